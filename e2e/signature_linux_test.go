package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/internal/lab"
	"github.com/egressguard/egressguard/shaper"
)

// waitMitigation polls status until a mitigation on iface is installed in
// the kernel, and returns it; it fails the test after limit.
func (e *env) waitMitigation(iface string, limit time.Duration) control.MitigationStatus {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, m := range e.status().Mitigations {
			if m.Interface == iface && m.Installed {
				return m
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("no mitigation installed on %s within %s", iface, limit)
	return control.MitigationStatus{}
}

// throttledClass reads the throttled class (e9:10) of iface's shaping
// device, tc -s as the oracle.
func (e *env) throttledClass(iface string) lab.ClassStat {
	e.t.Helper()
	cs, err := e.lab.Classes(e.ctx, e.lab.Node, shaper.ShapingDevice(iface))
	if err != nil {
		e.t.Fatal(err)
	}
	return cs["e9:10"]
}

// tcp443 runs a 2 s TCP upload to :443 from namespace ns and returns what
// the receiver got, in bit/s. A server still closing the previous test
// answers "busy"; the client then tries again.
func (e *env) tcp443(ns string) float64 {
	e.t.Helper()
	for try := 0; ; try++ {
		r, err := e.lab.Iperf(e.ctx, ns, lab.IperfOptions{Port: 443, Duration: 2 * time.Second})
		if err != nil && strings.Contains(err.Error(), "busy") && try < 20 {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		return r.ReceivedBps
	}
}

// TestSignatureThrottled: the detector's verdict becomes a throttle of
// exactly its signature — protocols and destination ports — keyed by the
// VM's bridge port when the verdict names one (so a spoofing VM is
// throttled alone), by source otherwise. tc -s on the shaping device shows
// the throttled class counting (and dropping) the flood, while TCP/443 of
// another source, or of the same VM when only its UDP floods, runs far
// above the throttle's rate (lab throttle: 1 Mbit/s).
func TestSignatureThrottled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fromVM    bool
		args      []string
		on        func(e *env) string // the interface the mitigation is on
		scope     shaper.Scope
		protocols []string
		ports     string // as joined: "any" or "8080"
		// namespaces whose TCP/443 upload must stay unthrottled
		free func(e *env) []string
	}{
		{"node SYN flood to 8080; a VM's 443", false, []string{"-ports", "8080", "-rate", "20000"},
			func(*env) string { return lab.Uplink }, shaper.ScopeSource, []string{"tcp"}, "8080",
			func(e *env) []string { return []string{e.lab.VMs[0].NS} }},
		{"VM UDP flood to random ports; its own and another VM's 443", true, []string{"-udp", "-ports", "random", "-rate", "20000"},
			func(e *env) string { return e.lab.VMs[0].Port }, shaper.ScopePort, []string{"udp"}, "any",
			func(e *env) []string { return []string{e.lab.VMs[0].NS, e.lab.VMs[1].NS} }},
		{"spoofed VM SYN flood to 443; another VM's 443", true, []string{"-ports", "443", "-rate", "20000", "-spoof", "10.77.0.0/16"},
			func(e *env) string { return e.lab.VMs[0].Port }, shaper.ScopePort, []string{"tcp"}, "443",
			func(e *env) []string { return []string{e.lab.VMs[1].NS} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 2, nil)
			if _, err := e.lab.IperfServer(e.ctx, 443); err != nil {
				t.Fatal(err)
			}
			for _, vm := range e.lab.VMs {
				e.arp(vm)
			}
			free := tc.free(e)
			before := map[string]float64{}
			for _, ns := range free {
				before[ns] = e.tcp443(ns)
			}
			e.startAgent()
			ns := e.lab.Node
			if tc.fromVM {
				ns = e.lab.VMs[0].NS
			}
			start := time.Now()
			fl := e.flood(ns, 40*time.Second, tc.args...)
			defer fl.Kill()
			// A deadline, not a timing: the machine may be busy.
			m := e.waitMitigation(tc.on(e), 20*time.Second)
			t.Logf("mitigation %.2f s after the flood started: %s scope %s sources %v protocols %v ports %v",
				time.Since(start).Seconds(), m.Interface, m.Scope, m.Sources, m.Protocols, m.Ports)
			if m.Scope != tc.scope || !slices.Equal(m.Protocols, tc.protocols) || joinPorts(m.Ports) != tc.ports {
				t.Errorf("mitigation scope %s protocols %v ports %s: want scope %s protocols %v ports %s",
					m.Scope, m.Protocols, joinPorts(m.Ports), tc.scope, tc.protocols, tc.ports)
			}
			for _, other := range append([]string{lab.Uplink}, vmPorts(e)...) {
				if other == m.Interface {
					continue
				}
				if _, err := e.lab.Exec(e.ctx, e.lab.Node, "ip", "link", "show", shaper.ShapingDevice(other)); err == nil {
					t.Errorf("a shaping device on %s too: only %s is throttled", other, m.Interface)
				}
			}
			c0, t0 := e.throttledClass(m.Interface), time.Now()
			for _, ns := range free {
				during := e.tcp443(ns)
				t.Logf("TCP/443 from %s: %.1f Mbit/s before, %.1f Mbit/s while %s is throttled (%.2fx)",
					ns, before[ns]/1e6, during/1e6, m.Interface, during/before[ns])
				if during < 20e6 {
					t.Errorf("TCP/443 from %s at %.2f Mbit/s while %s is throttled: want far above the 1 Mbit/s throttle", ns, during/1e6, m.Interface)
				}
			}
			c1, t1 := e.throttledClass(m.Interface), time.Now()
			rate := float64(c1.Bytes-c0.Bytes) * 8 / t1.Sub(t0).Seconds()
			t.Logf("tc -s class e9:10 on %s: %d packets sent, %d dropped; %.3f Mbit/s let through over %.1f s",
				shaper.ShapingDevice(m.Interface), c1.Packets, c1.Drops, rate/1e6, t1.Sub(t0).Seconds())
			if c1.Packets == 0 || c1.Drops == 0 {
				t.Errorf("the throttled class counted %d packets, %d drops: want the flood held", c1.Packets, c1.Drops)
			}
		})
	}
}

func vmPorts(e *env) []string {
	var out []string
	for _, vm := range e.lab.VMs {
		out = append(out, vm.Port)
	}
	return out
}

// joinPorts is "any" or the ports comma-separated.
func joinPorts(ps []shaper.PortRange) string {
	if len(ps) == 0 {
		return "any"
	}
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(p)
	}
	return s
}

// TestCLIPortScopeThroughAgent: with the agent running, `throttle --port`
// with protocols and a port range goes through the agent's policy, status
// shows it, and the kernel holds it on the VM port's ingress; bad input is
// refused with exit 2 as without the agent.
func TestCLIPortScopeThroughAgent(t *testing.T) {
	e := newEnv(t, 1, nil)
	vm := e.lab.VMs[0]
	e.startAgent()
	for _, bad := range [][]string{
		{"--protocols", "sctp"},
		{"--ports", "2000-1000"},
		{"--protocols", "icmp", "--ports", "80"},
		{"--source", "198.19.128.11/32"},
	} {
		out := e.cli(2, append([]string{"throttle", "--port", vm.Port}, bad...)...)
		t.Logf("throttle --port %s %s: exit 2: %s", vm.Port, strings.Join(bad, " "), strings.TrimSpace(out))
	}
	out := e.cli(0, "throttle", "--port", vm.Port, "--protocols", "udp,tcp", "--ports", "1000-2000,8080", "--rate", "2mbit", "--ttl", "10m")
	t.Logf("%s", strings.TrimSpace(out))
	if !strings.Contains(out, "through the agent") || !strings.Contains(out, "tcp+udp to ports 1000-2000,8080") || !strings.Contains(out, "scope port") {
		t.Errorf("throttle output %q: want it through the agent, tcp+udp to 1000-2000,8080, scope port", out)
	}
	m := e.waitMitigation(vm.Port, 5*time.Second)
	if m.Scope != shaper.ScopePort || !slices.Equal(m.Protocols, []string{"tcp", "udp"}) || joinPorts(m.Ports) != "1000-2000,8080" || m.RateBps != 2_000_000 {
		t.Errorf("status: %+v", m)
	}
	st := e.cli(0, "status")
	t.Logf("status:\n%s", st)
	if !strings.Contains(st, "PROTOCOLS") || !strings.Contains(st, "tcp+udp") || !strings.Contains(st, "1000-2000,8080") {
		t.Errorf("status does not show the port throttle's protocols and ports")
	}
	filters, err := e.lab.Exec(e.ctx, e.lab.Node, "tc", "filter", "show", "dev", vm.Port, "ingress")
	if err != nil || !strings.Contains(filters, "mirred") || !strings.Contains(filters, shaper.ShapingDevice(vm.Port)) {
		t.Errorf("tc filter show dev %s ingress: %v\n%s", vm.Port, err, filters)
	}
	e.cli(0, "unthrottle", "--port", vm.Port)
	if _, err := e.lab.Exec(e.ctx, e.lab.Node, "ip", "link", "show", shaper.ShapingDevice(vm.Port)); err == nil {
		t.Errorf("%s still there after unthrottle", shaper.ShapingDevice(vm.Port))
	}
	if ms := e.status().Mitigations; len(ms) != 0 {
		t.Errorf("mitigations after unthrottle: %+v", ms)
	}
}
