package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/attrib"
	"github.com/egressguard/egressguard/detect/evidence"
	"github.com/egressguard/egressguard/detect/nicstat"
	"github.com/egressguard/egressguard/detect/packet"
	"github.com/egressguard/egressguard/detect/synwatch"
	"github.com/egressguard/egressguard/internal/netif"
	"github.com/egressguard/egressguard/shaper"
)

// Evidence bundle caps: the box may be wiped before anyone looks, but the
// state directory must not fill the disk during a long incident.
const (
	evidenceBundleBytes = 4 << 20
	evidenceBundles     = 32
)

// Options configure Open.
type Options struct {
	Config  config.Config
	Version string
	Node    string
	Log     *slog.Logger
}

// Open builds the agent on this node's kernel: a capture on each watched
// interface (running until ctx ends), /proc/net/dev, the shaper over
// netlink, and evidence bundles under state_dir/evidence. Close releases
// the captures and netlink sockets; mitigations stay.
func Open(ctx context.Context, o Options) (*Agent, func(), error) {
	cfg := o.Config
	// Before anything touches the kernel: a token others can read or write
	// would let any local user order throttles.
	if err := CheckWebhookToken(cfg.Webhook.TokenFile, o.Log); err != nil {
		return nil, nil, fmt.Errorf("agent: refusing to start: %w", err)
	}
	watched, err := netif.Watched(cfg.Interfaces)
	if err != nil {
		return nil, nil, err
	}
	if len(watched) == 0 {
		return nil, nil, errors.New("agent: no interface to watch: none holds a default route; set interfaces in the config")
	}
	for _, w := range watched {
		// A missing interface is watched blind until it appears (links.go).
		if why, err := netif.LocalOnly(w.Name); err == nil && why != "" {
			return nil, nil, fmt.Errorf("agent: watch %s (%s): it is %s", w.Name, w.Reason, why)
		}
	}
	ifaces := netif.Names(watched)
	why := map[string]netif.Interface{}
	for _, w := range watched {
		why[w.Name] = w
	}
	feats, err := shaper.Probe(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: probe kernel features: %w", err)
	}
	if !feats.SFQ {
		o.Log.Warn("sch_sfq missing: throttled leaves fall back", "fq_codel", feats.FQCodel)
	}
	sh, err := shaper.Open(shaper.Options{Logger: o.Log})
	if err != nil {
		return nil, nil, err
	}
	closers := []func() error{sh.Close}
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	tx, err := nicstat.New("/proc", netif.Indexes)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	wake := make(chan struct{}, 1)
	onFlood := func() {
		select {
		case wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	binder := &synwatchBinder{ctx: ctx, ports: config.Ports(cfg.Throttle.Ports), log: o.Log, detect: cfg.DetectorConfig(), owned: cfg.Owned(), onFlood: onFlood,
		replies: detect.NewKeyReplies(), watchers: map[string]*synwatch.Watcher{}, stops: map[string]func(){}}
	closers = append(closers, binder.stopAll)
	ev, err := evidence.NewWriter(evidence.Options{
		Dir: filepath.Join(cfg.StateDir, "evidence"), MaxBundleBytes: evidenceBundleBytes, MaxBundles: evidenceBundles,
		Now: time.Now,
	})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	a, err := New(Deps{
		Config: cfg, Version: o.Version, Node: o.Node, Interfaces: ifaces, Captures: map[string]Capture{},
		Tx: nicstatReader{tx}, Kernel: sh, Features: feats, Log: o.Log, Binder: binder, Watched: why, Wake: wake,
		Evidence: &evidenceSink{w: ev, watchers: binder.watchers},
	})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	a.bindAll(ctx)
	go func() {
		for ev := range netif.WatchLinks(ctx, func(err error) { o.Log.Warn("link events lost; listing interfaces again", "err", err) }) {
			a.OnLink(ctx, ev)
		}
	}()
	for _, w := range watched {
		o.Log.Info("watching", "interface", w.Name, "why", w.Reason, "bridge", w.Bridge)
	}
	o.Log.Info("agent watching", "interfaces", ifaces, "mode", cfg.Mode, "sfq", feats.SFQ, "node", o.Node)
	return a, closeAll, nil
}

// watcherCapture is a synwatch capture that also reports its ring drops to
// the metrics.
type watcherCapture struct{ *synwatch.Watcher }

// Dropped implements DropCounter.
func (w watcherCapture) Dropped() uint64 { return w.Stats().Dropped }

// nicstatReader adapts nicstat to TxReader.
type nicstatReader struct{ r *nicstat.Reader }

func (n nicstatReader) Read(now time.Time) (map[string]TxRates, error) {
	rs, err := n.r.Read(now)
	out := make(map[string]TxRates, len(rs))
	for name, r := range rs {
		out[name] = TxRates{Bytes: r.TxBytes, Packets: r.TxPackets, Interval: r.Interval}
	}
	return out, err
}

// evidenceSink attributes a flood and writes its bundle: the verdict, the
// sources resolved to MAC and bridge port, the processes holding raw or
// packet sockets, and the capture's sampled packets over the verdict's
// window with their direction, port and sampling divisor.
type evidenceSink struct {
	w        *evidence.Writer
	watchers map[string]*synwatch.Watcher
}

func (e *evidenceSink) Write(v detect.Verdict, c detect.Counts) (attrib.Attribution, string, error) {
	var at attrib.Attribution
	addrs := make([]netip.Addr, 0, len(v.Evidence.TopSources))
	for _, s := range v.Evidence.TopSources {
		addrs = append(addrs, s.Addr)
	}
	var errs []error
	if r, err := attrib.OpenNet(attrib.NetOptions{}); err == nil {
		if t, err := r.Tables(); err == nil {
			at.Sources = t.Resolve(addrs, c.SourceMACs)
		} else {
			errs = append(errs, err)
		}
		r.Close()
	} else {
		errs = append(errs, err)
	}
	procs, err := attrib.SocketHolders("/proc")
	if err != nil {
		errs = append(errs, err)
	}
	// The agent's own capture sockets are no suspect.
	self := os.Getpid()
	at.Processes = slices.DeleteFunc(procs, func(p attrib.Process) bool { return p.PID == self })
	var pkts []evidence.Packet
	if w, ok := e.watchers[v.Interface]; ok {
		for _, p := range w.Recent() {
			dir := packet.DirIn
			if p.Outgoing {
				dir = packet.DirOut
			}
			pkts = append(pkts, evidence.Packet{At: p.Time, Data: p.Data, Length: p.WireLen, Interface: p.Port,
				BridgePort: p.Port != "", Direction: dir, SampleEvery: p.SampleEvery})
		}
	}
	dir, err := e.w.Write(evidence.Bundle{Verdict: v, Sources: at.Sources, Processes: at.Processes,
		LinkType: layers.LinkTypeEthernet, Filtered: true, Packets: pkts})
	if err != nil {
		errs = append(errs, err)
	}
	return at, dir, errors.Join(errs...)
}

// synwatchBinder binds synwatch captures to the watched interfaces. Its
// maps are guarded by the agent's lock (Bind and the stops run under it).
type synwatchBinder struct {
	ctx      context.Context
	ports    []uint16
	log      *slog.Logger
	detect   detect.Config
	owned    detect.Owned
	onFlood  func()
	replies  *detect.KeyReplies           // one per node: replies matched across captures
	watchers map[string]*synwatch.Watcher // shared with the evidence sink
	stops    map[string]func()
}

func (b *synwatchBinder) Bind(name string) (Capture, int, func(), error) {
	before, err := net.InterfaceByName(name)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("interface %s: %w", name, err)
	}
	w, err := synwatch.Open(synwatch.Options{Interface: name, Ports: b.ports, Logger: b.log,
		BridgePorts: true, Detect: b.detect, Owned: b.owned, Replies: b.replies, OnFlood: b.onFlood})
	if err != nil {
		return nil, 0, nil, err
	}
	// synwatch resolves the name again: make sure it bound the interface
	// whose index is returned.
	if after, err := net.InterfaceByName(name); err != nil || after.Index != before.Index {
		w.Close()
		return nil, 0, nil, fmt.Errorf("interface %s changed while its capture was opened", name)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil && ctx.Err() == nil {
			b.log.Error("capture stopped", "interface", name, "ifindex", before.Index, "err", err)
		}
	}()
	stop := func() {
		cancel()
		<-done
		w.Close()
		if b.watchers[name] == w {
			delete(b.watchers, name)
			delete(b.stops, name)
		}
	}
	b.watchers[name], b.stops[name] = w, stop
	return watcherCapture{w}, before.Index, stop, nil
}

// Reconfigure implements Binder: the running captures switch to cfg and
// owned, and later binds use them.
func (b *synwatchBinder) Reconfigure(cfg detect.Config, owned detect.Owned) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := owned.Validate(); err != nil {
		return err
	}
	var errs []error
	for name, w := range b.watchers {
		if err := w.Reconfigure(cfg, owned); err != nil {
			errs = append(errs, fmt.Errorf("capture %s: %w", name, err))
		}
	}
	b.detect, b.owned = cfg, owned
	return errors.Join(errs...)
}

// stopAll ends every capture (at shutdown).
func (b *synwatchBinder) stopAll() error {
	for _, stop := range b.stops {
		stop()
	}
	return nil
}
