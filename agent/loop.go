package agent

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/detect"
)

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
		case <-a.deps.Wake:
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
	var local map[netip.Addr]bool // the node's addresses, read when a verdict is flood
	all := make(map[string]*detect.Counts, len(a.deps.Interfaces))
	offers := make(map[string]uint64, len(a.deps.Interfaces))
	for _, name := range a.deps.Interfaces {
		if c, ok := a.deps.Captures[name]; ok {
			counts := c.Collect()
			offers[name] = a.addOffered(ctx, name, &counts)
			all[name] = &counts
		}
	}
	// Handshake replies are matched node-wide: with asymmetric routing the
	// SYN-ACKs come back on another uplink than the SYNs left by.
	detect.MatchReplies(all)
	for _, name := range a.deps.Interfaces {
		pc, ok := all[name]
		if !ok {
			continue
		}
		counts, offered := *pc, offers[name]
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
		var own []netip.Addr
		if v.State == detect.StateFlood {
			if local == nil {
				local = localAddrs() // once a tick, for every interface in flood
			}
			own = unported(v, local)
		}
		obs = append(obs, policy.Observation{Interface: name, State: v.State, Sources: offenders(v), Unported: own, Signature: v.Signature})
	}
	a.retryReapply(ctx)
	before := a.engine.Snapshot()
	a.execute(ctx, a.engine.Step(now, obs), before)
	a.repair(ctx)
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

// maxFloodVMSeries bounds egressguard_flood_vm_info per interface.
const maxFloodVMSeries = 16

// vmName is how the flood info series names a VM: the libvirt domain, the
// Proxmox VMID or the OpenStack Neutron port, "" when unknown.
func vmName(vm detect.VM) string {
	switch {
	case vm.Name != "":
		return vm.Name
	case vm.VMID != 0:
		return "proxmox/" + strconv.Itoa(vm.VMID)
	case vm.NeutronPort != "":
		return "neutron/" + vm.NeutronPort
	}
	return ""
}

// offenders are the sources a throttle should match: the flooding keys'
// when the verdict's signature names them (a busy node's healthy sources
// stay out), else the interface's top sources.
func offenders(v detect.Verdict) []netip.Addr {
	if s := v.Signature; s != nil && !s.Spoofed && len(s.Sources) > 0 {
		return s.Sources
	}
	return topAddrs(v.Evidence.TopSources)
}

// unported is the flooding source keys of v that are addresses of this
// node (local), seen behind no VM bridge port, neither by their own
// signature nor among a flooding port's sources: the node's own flood
// sources. A VM's address the inventory cannot place is not the node's.
func unported(v detect.Verdict, local map[netip.Addr]bool) []netip.Addr {
	behind := map[netip.Addr]bool{}
	for _, k := range v.Keys {
		if k.State == detect.StateFlood && k.Port != "" {
			for _, a := range k.Signature.Sources {
				behind[a] = true
			}
		}
	}
	var out []netip.Addr
	for _, k := range v.Keys {
		if k.State == detect.StateFlood && local[k.Source] && len(k.Signature.Ports) == 0 && !behind[k.Source] {
			out = append(out, k.Source)
		}
	}
	return out
}

// localAddrs is the set of addresses of this node's interfaces (in the
// agent's network namespace), or nil when they cannot be read.
func localAddrs() map[netip.Addr]bool {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	out := make(map[netip.Addr]bool, len(as))
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out[p.Addr().Unmap()] = true
		}
	}
	return out
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
	kinds := map[string]float64{"source": 0, "port": 0, "other": 0, "interface": 0}
	spoofing := 0.0
	for _, k := range v.Keys {
		kind, _, _ := strings.Cut(k.Key, " ")
		if k.State == detect.StateFlood {
			kinds[kind]++
		}
		if k.Spoofing {
			spoofing++
		}
	}
	for kind, n := range kinds {
		a.metrics.floodKeys.WithLabelValues(v.Interface, kind).Set(n)
	}
	a.metrics.spoofing.WithLabelValues(v.Interface).Set(spoofing)
	// The info series names flooding VMs only while they flood, and a bounded
	// number of them: labels carry no address, and vanish with the flood.
	a.metrics.floodVM.DeletePartialMatch(prometheus.Labels{"interface": v.Interface})
	if v.State == detect.StateFlood && v.Signature != nil {
		names := map[string]string{}
		for _, vm := range v.Signature.VMs {
			names[vm.Port] = vmName(vm)
		}
		for i, port := range v.Signature.Ports {
			if i == maxFloodVMSeries {
				break
			}
			a.metrics.floodVM.WithLabelValues(v.Interface, port, names[port]).Set(1)
		}
	}
}
