package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
		return nil, nil, err
	}
	watched, err := netif.Watched(cfg.Interfaces)
	if err != nil {
		return nil, nil, err
	}
	if len(watched) == 0 {
		return nil, nil, errors.New("agent: no interface to watch: none holds a default route; set interfaces in the config")
	}
	for _, w := range watched {
		why, err := netif.LocalOnly(w.Name)
		if err == nil && why != "" {
			err = fmt.Errorf("it is %s", why)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("agent: watch %s (%s): %w", w.Name, w.Reason, err)
		}
	}
	ifaces := netif.Names(watched)
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
	tx, err := nicstat.New("/proc")
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	caps := map[string]Capture{}
	watchers := map[string]*synwatch.Watcher{}
	for _, name := range ifaces {
		w, err := synwatch.Open(synwatch.Options{Interface: name, Ports: config.Ports(cfg.Throttle.Ports), Logger: o.Log})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, w.Close)
		go func() {
			if err := w.Run(ctx); err != nil && ctx.Err() == nil {
				o.Log.Error("capture stopped", "interface", name, "err", err)
			}
		}()
		caps[name] = watcherCapture{w}
		watchers[name] = w
	}
	ev, err := evidence.NewWriter(evidence.Options{
		Dir: filepath.Join(cfg.StateDir, "evidence"), MaxBundleBytes: evidenceBundleBytes, MaxBundles: evidenceBundles,
		Now: time.Now,
	})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	a, err := New(Deps{
		Config: cfg, Version: o.Version, Node: o.Node, Interfaces: ifaces, Captures: caps,
		Tx: nicstatReader{tx}, Kernel: sh, Features: feats, Log: o.Log,
		Evidence: &evidenceSink{w: ev, watchers: watchers},
	})
	if err != nil {
		closeAll()
		return nil, nil, err
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
// packet sockets, and the capture's last sampled packets.
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
			pkts = append(pkts, evidence.Packet{At: p.Time, Data: p.Data, Length: p.WireLen})
		}
	}
	dir, err := e.w.Write(evidence.Bundle{Verdict: v, Sources: at.Sources, Processes: at.Processes, LinkType: layers.LinkTypeEthernet, Packets: pkts})
	if err != nil {
		errs = append(errs, err)
	}
	return at, dir, errors.Join(errs...)
}
