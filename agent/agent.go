package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/attrib"
	"github.com/egressguard/egressguard/shaper"
)

// PauseFile, inside the state directory, stops every new action while it
// exists; releases still happen.
const PauseFile = "pause"

// Capture is one watched interface's packet counts (detect/synwatch).
type Capture interface {
	Collect() detect.Counts
}

// TxReader reads every interface's transmit counters (detect/nicstat).
type TxReader interface {
	Read(now time.Time) (map[string]TxRates, error)
}

// TxRates is one interface's transmit delta over the last interval.
type TxRates struct {
	Bytes, Packets uint64
	Interval       time.Duration
}

// Evidence attributes a flood and writes its bundle when an interface turns
// flood; it returns what it found and where it wrote.
type Evidence interface {
	Write(v detect.Verdict, c detect.Counts) (attrib.Attribution, string, error)
}

// Deps are the agent's adapters; Run's caller builds them so tests and the
// command share the same loop.
type Deps struct {
	Config     config.Config
	Version    string
	Node       string
	Interfaces []string
	Captures   map[string]Capture
	Tx         TxReader
	Kernel     control.Kernel
	Features   shaper.Features
	Evidence   Evidence
	Log        *slog.Logger
	Now        func() time.Time
}

// Agent is a running egressguard agent.
type Agent struct {
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	ctl     *control.Controller
	metrics *metrics

	// mu serialises everything that decides or acts: the loop, the webhook,
	// the socket. Holding it across kernel calls is deliberate: actions are
	// rare and must not interleave.
	mu       sync.Mutex
	cfg      config.Config
	det      *detect.Detector
	engine   *policy.Engine
	rates    map[string]uint64 // manual --rate per interface; default throttle.rate
	drops    map[string]uint64 // throttled-class drops at the last interval
	last     map[string]InterfaceView
	lastTick time.Time
	ready    bool
}

// InterfaceView is a watched interface's latest detection state.
type InterfaceView struct {
	Verdict     detect.Verdict
	Attribution *attrib.Attribution // of the latest flood on the interface
	Offered     uint64              // SYN+UDP the throttle dropped in the interval, added back to judge offered load
}

// New builds an agent from its adapters and validated config.
func New(d Deps) (*Agent, error) {
	store, err := state.Open(d.Config.StateDir)
	if err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	a := &Agent{
		deps:    d,
		log:     d.Log,
		now:     d.Now,
		metrics: newMetrics(d.Version),
		rates:   map[string]uint64{},
		drops:   map[string]uint64{},
		last:    map[string]InterfaceView{},
		ctl:     &control.Controller{Store: store, Kernel: d.Kernel, Features: d.Features, Now: d.Now, Log: d.Log},
	}
	if err := a.configure(d.Config); err != nil {
		return nil, err
	}
	return a, nil
}

// configure builds the detector and policy engine from cfg, carrying over
// the mitigations in force. It is how SIGHUP reloads.
func (a *Agent) configure(cfg config.Config) error {
	dc := detect.DefaultConfig()
	dc.SynRateMin = cfg.Detect.SynRateMin
	dc.SynAckRatioMax = cfg.Detect.SynackRatioMax
	dc.RstRatioMax = cfg.Detect.RstRatioMax
	dc.EnterAfter = cfg.Detect.EnterAfter
	dc.ExitAfter = cfg.Detect.ExitAfter
	det, err := detect.NewDetector(dc)
	if err != nil {
		return err
	}
	pauseFile := filepath.Join(cfg.StateDir, PauseFile)
	eng, err := policy.New(policy.Config{
		Mode:              policy.Mode(cfg.Mode),
		TTL:               time.Duration(cfg.Throttle.TTL),
		MaxTTL:            time.Duration(cfg.Throttle.MaxTTL),
		MaxActionsPerHour: cfg.Throttle.MaxActionsPerHour,
		Scope:             cfg.Throttle.Scope,
		MaxSources:        cfg.Throttle.MaxSources,
		// The detector already holds a verdict for exit_after clean
		// intervals; counting them again here would double the release delay.
		ExitAfter:      1,
		Ports:          config.Ports(cfg.Throttle.Ports),
		WhitelistPorts: config.Ports(cfg.Whitelist.Ports),
		WhitelistCIDRs: config.Prefixes(cfg.Whitelist.CIDRs),
		Paused: func() bool {
			_, err := os.Stat(pauseFile)
			return err == nil
		},
	})
	if err != nil {
		return err
	}
	if a.engine != nil {
		if err := eng.Adopt(a.engine.Mitigations()); err != nil {
			return err
		}
	}
	a.cfg, a.det, a.engine = cfg, det, eng
	return nil
}

// Reload validates and applies a new config; on error the old one stays.
// Interfaces, listen address and socket take effect at the next start.
func (a *Agent) Reload(cfg config.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.configure(cfg); err != nil {
		return err
	}
	a.log.Info("config reloaded", "mode", cfg.Mode)
	return nil
}

// Reconcile makes the kernel match the state file at start: expired
// mitigations are removed, missing or half-installed ones reinstalled, and an
// egressguard layout with no record (a crash between install and record) is
// removed. Foreign root qdiscs are left alone and reported.
func (a *Agent) Reconcile(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	st, err := a.ctl.Store.Load()
	if err != nil {
		return err
	}
	var adopt []policy.Mitigation
	var errs []error
	for _, m := range st.Mitigations {
		if m.Expired(now) {
			a.log.Info("reconcile: removing expired mitigation", "interface", m.Interface, "expired", m.Expires)
			if err := a.ctl.Unthrottle(ctx, m.Interface); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		spec := a.spec(m.Interface, m.Scope, m.Sources, m.Ports, m.RateBps)
		if _, err := a.ctl.Install(ctx, control.Request{Spec: spec, Reason: m.Reason, Owners: m.Owners, Expires: m.Expires}); err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", m.Interface, err))
			continue
		}
		a.rates[m.Interface] = m.RateBps
		adopt = append(adopt, policy.Mitigation{
			Interface: m.Interface, Scope: m.Scope, Sources: m.Sources, Ports: m.Ports,
			Reason: policy.Reason(m.Reason), Owners: m.Owners, Since: m.Since, Expires: m.Expires,
		})
		a.metrics.expiry.WithLabelValues(m.Interface).Set(float64(m.Expires.Unix()))
	}
	if err := a.engine.Adopt(adopt); err != nil {
		errs = append(errs, err)
	}
	a.refreshActive()
	status, err := a.ctl.Status(ctx, a.cfg.Mode)
	if err == nil {
		for _, name := range status.Unrecorded {
			a.log.Warn("reconcile: removing an egressguard layout with no record (interrupted install)", "interface", name)
			if err := a.ctl.Unthrottle(ctx, name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, name := range a.deps.Interfaces {
		if inst, err := a.deps.Kernel.Inspect(ctx, name); err == nil && !inst.Ours && !shaper.IsKernelDefaultRoot(inst.RootKind) {
			a.log.Warn("foreign root qdisc left alone; a throttle here needs --force", "interface", name, "qdisc", inst.RootKind)
		}
	}
	a.ready = true
	return errors.Join(errs...)
}

// spec is the shaper Spec of a mitigation under the current config.
func (a *Agent) spec(iface string, scope shaper.Scope, sources []netip.Prefix, ports []uint16, rate uint64) shaper.Spec {
	if rate == 0 {
		rate = uint64(a.cfg.Throttle.Rate)
	}
	if len(ports) == 0 {
		ports = config.Ports(a.cfg.Throttle.Ports)
	}
	if scope == shaper.ScopeNode {
		sources = nil
	}
	link := uint64(a.cfg.Throttle.LinkRate)
	if link == 0 {
		link, _ = shaper.LinkSpeed(iface)
	}
	return shaper.Spec{
		Interface: iface, Rate: rate, LinkRate: link, Ports: ports, Protocols: a.cfg.Throttle.Protocols,
		Sources: sources, WhitelistPorts: config.Ports(a.cfg.Whitelist.Ports), WhitelistCIDRs: config.Prefixes(a.cfg.Whitelist.CIDRs),
	}
}

// Run samples every interval until ctx ends. Mitigations stay in force when
// it returns: they carry their expiry in the state file.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	interval := time.Duration(a.cfg.Detect.Interval)
	a.lastTick = a.now()
	a.mu.Unlock()
	if _, err := a.deps.Tx.Read(a.lastTick); err != nil {
		a.log.Warn("transmit counters", "err", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.Tick(ctx)
		}
	}
}

// Tick runs one interval: sample, judge, decide, act.
func (a *Agent) Tick(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	elapsed := now.Sub(a.lastTick)
	a.lastTick = now
	tx, err := a.deps.Tx.Read(now)
	if err != nil {
		a.log.Warn("transmit counters", "err", err)
	}
	obs := make([]policy.Observation, 0, len(a.deps.Interfaces))
	for _, name := range a.deps.Interfaces {
		c, ok := a.deps.Captures[name]
		if !ok {
			continue
		}
		counts := c.Collect()
		offered := a.addOffered(ctx, name, &counts)
		r := tx[name]
		interval := r.Interval
		if interval <= 0 {
			interval = elapsed
		}
		v := a.det.Observe(detect.Sample{Interface: name, At: now, Interval: interval, TxBytes: r.Bytes, TxPackets: r.Packets, Counts: counts})
		prevView := a.last[name]
		prev := prevView.Verdict.State
		a.last[name] = InterfaceView{Verdict: v, Offered: offered, Attribution: prevView.Attribution}
		a.observeMetrics(v)
		if v.State != prev && (v.State == detect.StateFlood || prev == detect.StateFlood) {
			a.log.Info("verdict", "interface", name, "state", v.State, "from", prev, "reasons", v.Reasons,
				"syn_out_pps", v.Evidence.SynOutPps, "synack_in_pps", v.Evidence.SynAckInPps,
				"ratio", v.Evidence.SynAckRatio, "top_sources", v.Evidence.TopSources, "top_dst_ports", v.Evidence.TopDstPorts)
		}
		if v.State == detect.StateFlood && prev != detect.StateFlood && a.deps.Evidence != nil {
			at, dir, err := a.deps.Evidence.Write(v, counts)
			if err != nil {
				a.log.Warn("evidence bundle", "interface", name, "err", err)
			}
			if dir != "" {
				a.metrics.evidence.Inc()
			}
			view := a.last[name]
			view.Attribution = &at
			a.last[name] = view
			a.log.Info("flood attributed", "interface", name, "sources", at.Sources, "processes", at.Processes, "evidence", dir)
		}
		obs = append(obs, policy.Observation{Interface: name, State: v.State, Sources: topAddrs(v.Evidence.TopSources)})
	}
	a.execute(ctx, a.engine.Step(now, obs), false)
	a.persistRenewals()
}

// addOffered adds back what the throttle dropped: packet taps run after the
// qdisc, so once throttled the capture sees only what HTB let through, and
// without this the flood would look over and be released while it goes on.
// Drops are split between SYN and UDP in the proportion the capture saw.
func (a *Agent) addOffered(ctx context.Context, iface string, c *detect.Counts) uint64 {
	if _, ok := a.engineMitigation(iface); !ok {
		delete(a.drops, iface)
		return 0
	}
	inst, err := a.deps.Kernel.Inspect(ctx, iface)
	if err != nil || !inst.Ours {
		return 0
	}
	a.metrics.throttledB.WithLabelValues(iface).Set(float64(inst.ThrottledStats.Bytes))
	a.metrics.throttledD.WithLabelValues(iface).Set(float64(inst.ThrottledStats.Drops))
	prev, seen := a.drops[iface]
	a.drops[iface] = inst.ThrottledStats.Drops
	if !seen || inst.ThrottledStats.Drops < prev {
		return 0
	}
	d := inst.ThrottledStats.Drops - prev
	syn, udp := c.SynOut, c.UDPOut
	if syn+udp == 0 {
		c.SynOut += d
		return d
	}
	toSyn := d * syn / (syn + udp)
	c.SynOut += toSyn
	c.UDPOut += d - toSyn
	return d
}

func (a *Agent) engineMitigation(iface string) (policy.Mitigation, bool) {
	for _, m := range a.engine.Mitigations() {
		if m.Interface == iface {
			return m, true
		}
	}
	return policy.Mitigation{}, false
}

func topAddrs(ts []detect.SourceCount) []netip.Addr {
	out := make([]netip.Addr, 0, len(ts))
	for _, s := range ts {
		out = append(out, s.Addr)
	}
	return out
}

func (a *Agent) observeMetrics(v detect.Verdict) {
	e := v.Evidence
	a.metrics.txBytes.WithLabelValues(v.Interface).Set(e.TxBps / 8)
	a.metrics.txPackets.WithLabelValues(v.Interface).Set(e.TxPps)
	a.metrics.synOut.WithLabelValues(v.Interface).Set(e.SynOutPps)
	a.metrics.synAckIn.WithLabelValues(v.Interface).Set(e.SynAckInPps)
	a.metrics.fanOut.WithLabelValues(v.Interface).Set(float64(e.FanOut))
	a.metrics.setVerdict(v.Interface, string(v.State))
}

// execute carries out the policy's decisions; force replaces a foreign root
// qdisc (an operator's --force). A kernel failure is logged and counted, and
// the mitigation is dropped from the policy so that it matches the kernel.
func (a *Agent) execute(ctx context.Context, ds []policy.Decision, force bool) {
	for _, d := range ds {
		switch d.Action {
		case policy.ActionThrottle, policy.ActionUpdate:
			m := d.Mitigation
			spec := a.spec(m.Interface, m.Scope, m.Sources, m.Ports, a.rates[m.Interface])
			_, err := a.ctl.Install(ctx, control.Request{Spec: spec, Reason: m.Reason, Owners: m.Owners, Expires: m.Expires, Force: force})
			if err != nil {
				a.log.Error("throttle failed", "interface", m.Interface, "err", err)
				a.metrics.refused.WithLabelValues("error").Inc()
				if d.Action == policy.ActionThrottle {
					a.engine.Release(a.now(), "", m.Interface)
				}
				continue
			}
			a.metrics.actions.WithLabelValues(string(d.Action), string(d.Reason)).Inc()
			a.log.Info("mitigation "+string(d.Action), "interface", m.Interface, "scope", m.Scope, "sources", m.Sources,
				"reason", d.Reason, "owner", d.Owner, "expires", m.Expires, "detail", d.Detail)
		case policy.ActionKeep:
			if err := a.ctl.Record(d.Mitigation.Interface, d.Mitigation.Owners, d.Mitigation.Expires); err != nil {
				a.log.Warn("record mitigation", "interface", d.Interface, "err", err)
			}
		case policy.ActionRelease:
			err := a.ctl.Unthrottle(ctx, d.Interface)
			if err != nil && !errors.Is(err, control.ErrNotThrottled) {
				a.log.Error("release failed", "interface", d.Interface, "err", err)
				continue
			}
			delete(a.rates, d.Interface)
			delete(a.drops, d.Interface)
			a.metrics.actions.WithLabelValues("release", string(d.Reason)).Inc()
			a.metrics.expiry.DeleteLabelValues(d.Interface)
			a.log.Info("mitigation released", "interface", d.Interface, "cause", d.Cause, "owner", d.Owner, "detail", d.Detail)
		case policy.ActionRefuse:
			a.metrics.refused.WithLabelValues(string(d.RefusedBecause)).Inc()
			a.log.Warn("action refused", "interface", d.Interface, "refused_because", d.RefusedBecause,
				"reason", d.Reason, "sources", d.Sources, "detail", d.Detail)
		case policy.ActionAlert:
			a.log.Warn("mitigation alert", "interface", d.Interface, "cause", d.Cause, "detail", d.Detail)
		}
	}
	a.refreshActive()
}

// refreshActive sets the active-mitigation gauges from the engine.
func (a *Agent) refreshActive() {
	a.metrics.active.Reset()
	for _, m := range a.engine.Mitigations() {
		a.metrics.active.WithLabelValues(m.Interface, string(m.Reason)).Set(1)
		a.metrics.expiry.WithLabelValues(m.Interface).Set(float64(m.Expires.Unix()))
	}
}

// persistRenewals writes renewed expiries to the state file, at most once a
// minute per mitigation: a crash then loses at most a minute of TTL.
func (a *Agent) persistRenewals() {
	ms := a.engine.Mitigations()
	if len(ms) == 0 {
		return // the common case: no file read every interval
	}
	st, err := a.ctl.Store.Load()
	if err != nil {
		return
	}
	for _, m := range ms {
		rec, ok := st.Find(m.Interface)
		if !ok || m.Expires.Sub(rec.Expires) < time.Minute {
			continue
		}
		if err := a.ctl.Record(m.Interface, m.Owners, m.Expires); err != nil {
			a.log.Warn("record renewal", "interface", m.Interface, "err", err)
		}
	}
}
