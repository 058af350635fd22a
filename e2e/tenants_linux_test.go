package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/internal/lab"
	"github.com/egressguard/egressguard/shaper"
)

// firstFlood returns the first sample (after since) in which key is a
// flood, with that key's verdict; it fails the test after limit.
func (p *poller) firstFlood(t *testing.T, key string, since time.Time, limit time.Duration) (sample, detect.KeyVerdict) {
	t.Helper()
	var kv detect.KeyVerdict
	s := p.waitFor(t, key+" flood", since, limit, func(s sample) bool {
		for _, k := range s.iface.Keys {
			if k.Key == key && k.State == detect.StateFlood {
				kv = k
				return true
			}
		}
		return false
	})
	return s, kv
}

// floods lists every key any sample called a flood.
func floods(samples []sample) map[string]bool {
	out := map[string]bool{}
	for _, s := range samples {
		for _, k := range s.iface.Keys {
			if k.State == detect.StateFlood {
				out[k.Key] = true
			}
		}
	}
	return out
}

// arp makes the VM talk to its gateway once, so the node's neighbour table
// learns the address the VM's port owns.
func (e *env) arp(vm lab.VM) {
	e.t.Helper()
	if err := e.lab.Greet(e.ctx, vm); err != nil {
		e.t.Fatal(err)
	}
}

// TestBusyNodeKeyed is docs/design.md §11's busy node: the node crawls :443 with
// healthy handshakes while a VM floods :80 with unanswered SYNs. The VM is
// named (its source and its bridge port) and throttled by its port; the
// node's own source is never a flood and never throttled.
func TestBusyNodeKeyed(t *testing.T) {
	e := newEnv(t, 1, nil)
	vm := e.lab.VMs[0]
	e.sink("443")
	e.arp(vm)
	e.startAgent()
	p := e.poll(100 * time.Millisecond)
	crawl, err := e.lab.Start(e.lab.Node, e.tools.Crawler, "-ports", "443", "-duration", "16s")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second) // the crawler alone first
	start := time.Now()
	// Deadlines, not timings: the machine running the tests may be busy.
	fl := e.flood(vm.NS, 10*time.Second, "-ports", "80", "-rate", "25000")
	s, kv := p.firstFlood(t, "source "+vm.Addr.String(), start, 10*time.Second)
	t.Logf("VM source named a flood %.2f s after the flood started: %v; signature %+v", s.at.Sub(start).Seconds(), kv.Reasons, kv.Signature)
	if !slices.Equal(kv.Signature.Ports, []string{vm.Port}) || !slices.Equal(kv.Signature.DstPorts, []uint16{80}) {
		t.Errorf("signature %+v: want port %s, destination port 80", kv.Signature, vm.Port)
	}
	// The verdict names the VM's one port: the throttle holds what the VM
	// sends through it, on the port's ingress; the uplink is not throttled.
	thr := e.waitMitigation(vm.Port, 10*time.Second)
	if string(thr.Scope) != "port" || !slices.Equal(thr.Protocols, []string{"tcp"}) || joinPorts(thr.Ports) != "80" {
		t.Errorf("mitigation scope %s protocols %v ports %v: want port %s, tcp to 80", thr.Scope, thr.Protocols, thr.Ports, vm.Port)
	}
	if err := crawl.Wait(e.ctx); err != nil {
		t.Fatalf("crawler: %v", err)
	}
	fl.Kill()
	all := floods(p.Stop())
	t.Logf("crawler: %s; keys ever flood: %v", strings.TrimSpace(crawl.Stdout()), all)
	if all["source "+lab.NodeAddr4.String()] {
		t.Errorf("the node's healthy crawler source was called a flood")
	}
	if !all["port "+vm.Port] {
		t.Errorf("the VM's port %s never a flood", vm.Port)
	}
}

// TestSpoofedVMKeyedToPort: a VM floods with spoofed random sources. The
// flood is keyed to its bridge port, marked spoofed, and the port — named
// as Proxmox names a VM's first NIC — resolves to the VM's VMID.
func TestSpoofedVMKeyedToPort(t *testing.T) {
	e := newEnv(t, 1, nil)
	vm := e.lab.VMs[0]
	const pvePort = "tap101i0"
	for _, args := range [][]string{
		{"link", "set", vm.Port, "down"},
		{"link", "set", vm.Port, "name", pvePort},
		{"link", "set", pvePort, "up"},
	} {
		if _, err := e.lab.Exec(e.ctx, e.lab.Node, "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	e.arp(vm)
	e.startAgent()
	p := e.poll(100 * time.Millisecond)
	start := time.Now()
	fl := e.flood(vm.NS, 10*time.Second, "-ports", "443", "-rate", "10000", "-spoof", "10.77.0.0/16")
	s, kv := p.firstFlood(t, "port "+pvePort, start, 10*time.Second)
	t.Logf("port named %.2f s after the flood started: %v; signature %+v", s.at.Sub(start).Seconds(), kv.Reasons, kv.Signature)
	sig := kv.Signature
	if !sig.Spoofed || !kv.Spoofing || !slices.Equal(sig.DstPorts, []uint16{443}) {
		t.Errorf("signature %+v spoofing %v: want spoofed, to 443", sig, kv.Spoofing)
	}
	if len(sig.VMs) != 1 || sig.VMs[0].Platform != "proxmox" || sig.VMs[0].VMID != 101 {
		t.Errorf("VMs %+v: want Proxmox VMID 101", sig.VMs)
	}
	if n := e.metricValue("egressguard_spoofing_ports", map[string]string{"interface": lab.Uplink}); !(n >= 1) {
		t.Errorf("egressguard_spoofing_ports = %v, want at least 1", n)
	}
	p.Stop()
	fl.Kill()
}

// TestOtherFloodsKeyed: floods beyond TCP 80/443 get verdicts whose
// signature says what to throttle.
func TestOtherFloodsKeyed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fromVM    bool
		args      []string
		key       func(e *env) string
		protocols []string
		ports     []uint16 // nil: any
		spoofed   bool
	}{
		{"syn to 8080", true, []string{"-ports", "8080", "-rate", "20000"},
			func(e *env) string { return "port " + e.lab.VMs[0].Port }, []string{"tcp"}, []uint16{8080}, false},
		{"udp to random ports", true, []string{"-udp", "-ports", "random", "-rate", "20000"},
			func(e *env) string { return "source " + e.lab.VMs[0].Addr.String() }, []string{"udp"}, nil, false},
		{"icmp", false, []string{"-icmp"},
			func(e *env) string { return "source " + lab.NodeAddr4.String() }, []string{"icmp"}, nil, false},
		{"reflection queries", true, []string{"-udp", "-ports", "53,123,11211,1900", "-size", "20", "-rate", "2000", "-spoof", "10.77.0.0/16"},
			func(e *env) string { return "port " + e.lab.VMs[0].Port }, []string{"udp"}, []uint16{53, 123, 1900, 11211}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1, nil)
			ns := e.lab.Node
			if tc.fromVM {
				ns = e.lab.VMs[0].NS
				e.arp(e.lab.VMs[0])
			}
			e.startAgent()
			p := e.poll(100 * time.Millisecond)
			start := time.Now()
			fl := e.flood(ns, 10*time.Second, tc.args...)
			s, kv := p.firstFlood(t, tc.key(e), start, 10*time.Second)
			t.Logf("%s named %.2f s after the flood started: %v; signature %+v", kv.Key, s.at.Sub(start).Seconds(), kv.Reasons, kv.Signature)
			sig := kv.Signature
			got := slices.Sorted(slices.Values(sig.DstPorts))
			if !slices.Equal(sig.Protocols, tc.protocols) || !slices.Equal(got, tc.ports) || sig.Spoofed != tc.spoofed {
				t.Errorf("signature %+v: want protocols %v, ports %v, spoofed %v", sig, tc.protocols, tc.ports, tc.spoofed)
			}
			if s.iface.Signature == nil || s.verdict != "flood" {
				t.Errorf("interface verdict %s with signature %v: want flood with a signature", s.verdict, s.iface.Signature)
			}
			p.Stop()
			fl.Kill()
		})
	}
}

// benignRun starts the agent, runs procs to the end and fails the test if
// any key was ever suspect, the verdict ever flood or anything throttled;
// it returns the peak interface SYN rate.
func (e *env) benignRun(specs [][]string) float64 {
	t := e.t
	t.Helper()
	e.startAgent()
	p := e.poll(100 * time.Millisecond)
	var procs []*lab.Proc
	for _, spec := range specs {
		pr, err := e.lab.Start(spec[0], spec[1], spec[2:]...)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, pr)
	}
	for _, pr := range procs {
		if err := pr.Wait(e.ctx); err != nil {
			t.Fatalf("%s: %v\n%s", pr.Name, err, pr.Output())
		}
		t.Logf("%s: %s", pr.Name, tail(strings.TrimSpace(pr.Stdout()), 1))
	}
	time.Sleep(time.Second) // the last ticks reach status
	var peak float64
	for _, s := range p.Stop() {
		if s.err != nil {
			t.Fatal(s.err)
		}
		peak = max(peak, s.iface.SynOutPps)
		for _, k := range s.iface.Keys {
			if k.Suspect || k.State == detect.StateFlood {
				t.Errorf("at %s: %s %s: %v", s.at.Format(time.StampMilli), k.Key, k.State, k.Reasons)
			}
		}
		if s.verdict == "flood" || s.installed > 0 {
			t.Errorf("at %s: verdict %s, %d mitigations installed", s.at.Format(time.StampMilli), s.verdict, s.installed)
		}
	}
	return peak
}

// TestNATLikeMix: two VMs behind the node, one crawling with healthy
// handshakes, one uploading, beside the node's own crawler: many sources,
// ports and protocols through one uplink, and nothing is ever suspect.
func TestNATLikeMix(t *testing.T) {
	e := newEnv(t, 2, nil)
	e.sink("80,443")
	if _, err := e.lab.IperfServer(e.ctx, 5201); err != nil {
		t.Fatal(err)
	}
	vm1, vm2 := e.lab.VMs[0], e.lab.VMs[1]
	peak := e.benignRun([][]string{
		{vm1.NS, e.tools.Crawler, "-ports", "80", "-duration", "10s", "-workers", "32"},
		{e.lab.Node, e.tools.Crawler, "-ports", "443", "-duration", "10s", "-workers", "16"},
		{vm2.NS, "iperf3", "-c", lab.Dst4.String(), "-p", "5201", "-t", "10"},
	})
	t.Logf("peak interface syn_out %.0f/s", peak)
	if peak < 2000 {
		t.Errorf("peak syn_out %.0f/s: below syn_rate_min, the test proves nothing", peak)
	}
}

// TestLateSynAckClient: the node's client connects to one server whose
// SYN-ACKs come back 300 ms late (a userspace delay line on the internet
// side holds them; no netem needed) at well above syn_rate_min: under the
// default rtt_allowance it is never suspect.
func TestLateSynAckClient(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.sink("443")
	if _, err := e.lab.Exec(e.ctx, e.lab.Inet, "iptables", "-A", "OUTPUT", "-p", "tcp", "-s", netip.PrefixFrom(lab.Dst4, 32).String(),
		"--tcp-flags", "SYN,ACK", "SYN,ACK", "-j", "NFQUEUE", "--queue-num", "7", "--queue-bypass"); err != nil {
		t.Fatal(err)
	}
	dl, err := e.lab.Start(e.lab.Inet, e.tools.Delayline, "-queue", "7", "-delay", "300ms")
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.WaitReady("ready", readyLimit); err != nil {
		t.Fatal(err)
	}
	peak := e.benignRun([][]string{
		{e.lab.Node, e.tools.Crawler, "-ports", "443", "-dst", netip.PrefixFrom(lab.Dst4, 32).String(), "-duration", "8s", "-workers", "1000"},
	})
	if err := dl.Stop(2 * time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("delay line: %s; peak syn_out %.0f/s", strings.Join(strings.Fields(dl.Stdout()), " "), peak)
	if peak < 2000 {
		t.Errorf("peak syn_out %.0f/s: below syn_rate_min, the test proves nothing", peak)
	}
}

// TestTwoSpoofingVMsEachThrottled: two VMs flood with spoofed sources, the
// second starting while the first is already throttled. Each is throttled
// on its own bridge port (tc -s as the oracle: both throttled classes
// drop), the uplink gets no throttle, and the first is released after its
// own flood ends while the second's flood goes on.
func TestTwoSpoofingVMsEachThrottled(t *testing.T) {
	e := newEnv(t, 2, nil)
	vm1, vm2 := e.lab.VMs[0], e.lab.VMs[1]
	e.arp(vm1)
	e.arp(vm2)
	e.startAgent()
	f1 := e.flood(vm1.NS, 8*time.Second, "-ports", "443", "-rate", "10000", "-spoof", "10.77.0.0/16")
	m1 := e.waitMitigation(vm1.Port, 10*time.Second)
	f2 := e.flood(vm2.NS, 25*time.Second, "-ports", "80", "-rate", "10000", "-spoof", "10.78.0.0/16")
	m2 := e.waitMitigation(vm2.Port, 10*time.Second)
	for _, m := range []control.MitigationStatus{m1, m2} {
		if m.Scope != shaper.ScopePort || len(m.Sources) != 0 {
			t.Errorf("mitigation on %s: scope %s sources %v, want scope port", m.Interface, m.Scope, m.Sources)
		}
	}
	time.Sleep(time.Second)
	for _, port := range []string{vm1.Port, vm2.Port} {
		if c := e.throttledClass(port); c.Drops == 0 {
			t.Errorf("%s: throttled class %+v dropped nothing", shaper.ShapingDevice(port), c)
		}
	}
	if err := f1.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	// exit_after is 10 intervals of 1 s in the lab.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ifaces []string
		for _, m := range e.status().Mitigations {
			ifaces = append(ifaces, m.Interface)
		}
		if slices.Contains(ifaces, lab.Uplink) {
			t.Fatalf("mitigations on %v: the uplink was throttled", ifaces)
		}
		if !slices.Contains(ifaces, vm1.Port) {
			if !slices.Contains(ifaces, vm2.Port) {
				t.Fatalf("mitigations on %v: %s released while its VM still floods", ifaces, vm2.Port)
			}
			t.Logf("%s released, %s held: %v", vm1.Port, vm2.Port, ifaces)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still throttled 20 s after its flood ended: %v", vm1.Port, ifaces)
		}
		time.Sleep(250 * time.Millisecond)
	}
	f2.Kill()
}

// TestNodeAndVMFloodTogether: the node floods from its own address while a
// VM floods with spoofed sources: the VM is throttled on its port and the
// node's address on the uplink, by source (the other tenants' traffic
// through the uplink is not matched).
func TestNodeAndVMFloodTogether(t *testing.T) {
	e := newEnv(t, 1, nil)
	vm := e.lab.VMs[0]
	e.arp(vm)
	e.startAgent()
	fv := e.flood(vm.NS, 15*time.Second, "-ports", "443", "-rate", "10000", "-spoof", "10.77.0.0/16")
	fn := e.flood(e.lab.Node, 15*time.Second, "-ports", "80", "-rate", "20000")
	mv := e.waitMitigation(vm.Port, 10*time.Second)
	mn := e.waitMitigation(lab.Uplink, 10*time.Second)
	t.Logf("VM: %s %s %v; node: %s %s %v", mv.Interface, mv.Scope, mv.Ports, mn.Interface, mn.Scope, mn.Sources)
	if mv.Scope != shaper.ScopePort {
		t.Errorf("%s: scope %s, want port", vm.Port, mv.Scope)
	}
	if mn.Scope != shaper.ScopeSource || len(mn.Sources) != 1 || mn.Sources[0].Addr() != lab.NodeAddr4 {
		t.Errorf("%s: scope %s sources %v, want source %s", lab.Uplink, mn.Scope, mn.Sources, lab.NodeAddr4)
	}
	fv.Kill()
	fn.Kill()
}
