package policy

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/shaper"
)

// sigFlood is a flood observation of iface carrying signature sig.
func sigFlood(iface string, sig detect.Signature, srcs ...string) Observation {
	o := flood(iface, srcs...)
	o.Signature = &sig
	return o
}

// mitLines prints what each mitigation in force throttles.
func mitLines(e *Engine) []string {
	var out []string
	for _, m := range e.Mitigations() {
		out = append(out, fmt.Sprintf("%s %s sources=%v protocols=%v ports=%v owners=%s", m.Interface, m.Scope, m.Sources,
			m.Protocols, m.Ports, strings.Join(m.Owners, ",")))
	}
	return out
}

func newEngine(t *testing.T, edit func(*Config)) *Engine {
	t.Helper()
	cfg := baseConfig()
	cfg.Protocols = []string{"udp", "tcp"}
	if edit != nil {
		edit(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestSignatureBecomesTheThrottle: the detector's claim throttles the
// signature's protocols and ports, not throttle.protocols/throttle.ports,
// and throttle.scope auto picks port, source or node from the signature.
func TestSignatureBecomesTheThrottle(t *testing.T) {
	tests := []struct {
		name string
		obs  Observation
		want []string
	}{
		{"SYN flood to 8080 from the node, spoofed: node, tcp 8080",
			sigFlood("eth0", detect.Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{8080}, Spoofed: true}),
			[]string{"eth0 node sources=[] protocols=[tcp] ports=[8080] owners=detector"}},
		{"UDP flood to random ports from one source: source, udp any port",
			sigFlood("eth0", detect.Signature{Protocols: []string{"udp"}, Sources: []netip.Addr{netip.MustParseAddr(srcA)}}, srcA),
			[]string{"eth0 source sources=[198.51.100.1/32] protocols=[udp] ports=[] owners=detector"}},
		{"ICMP flood: icmp, no ports",
			sigFlood("eth0", detect.Signature{Protocols: []string{"icmp"}}, srcA),
			[]string{"eth0 source sources=[198.51.100.1/32] protocols=[icmp] ports=[] owners=detector"}},
		{"a protocol the shaper cannot name: any protocol, any port",
			sigFlood("eth0", detect.Signature{Protocols: []string{"udp", "other"}}, srcA),
			[]string{"eth0 source sources=[198.51.100.1/32] protocols=[] ports=[] owners=detector"}},
		{"top ports sorted, SSH and whitelist.ports dropped",
			sigFlood("eth0", detect.Signature{Protocols: []string{"udp", "tcp"}, DstPorts: []uint16{53, 22, 11211, 51820, 123}}, srcA),
			[]string{"eth0 source sources=[198.51.100.1/32] protocols=[tcp udp] ports=[53 123 11211] owners=detector"}},
		{"one VM port, spoofed sources: scope port on the VM's port",
			sigFlood("eth0", detect.Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{443}, Spoofed: true, Ports: []string{"vnet3"}}),
			[]string{"vnet3 port sources=[] protocols=[tcp] ports=[443] owners=detector"}},
		{"one VM port, sources named: the port still wins (it holds whatever the VM sends)",
			sigFlood("eth0", detect.Signature{Protocols: []string{"udp"}, Ports: []string{"vnet3"}, Sources: []netip.Addr{netip.MustParseAddr(srcA)}}, srcA),
			[]string{"vnet3 port sources=[] protocols=[udp] ports=[] owners=detector"}},
		{"no signature: throttle.protocols and throttle.ports",
			flood("eth0", srcA),
			[]string{"eth0 source sources=[198.51.100.1/32] protocols=[tcp udp] ports=[80 443] owners=detector"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, nil)
			ds := e.Step(t0, []Observation{tt.obs})
			if len(ds) != 1 || ds[0].Action != ActionThrottle {
				t.Fatalf("decisions %+v, want one throttle", ds)
			}
			got := mitLines(e)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
			m := e.Mitigations()[0]
			if ds[0].Interface != m.Interface {
				t.Errorf("decision on %s, mitigation on %s", ds[0].Interface, m.Interface)
			}
		})
	}
}

// TestSignatureOnlyWhitelistedPorts: a flood whose every top port is
// whitelisted is refused, never widened to any port.
func TestSignatureOnlyWhitelistedPorts(t *testing.T) {
	e := newEngine(t, nil)
	ds := e.Step(t0, []Observation{sigFlood("eth0", detect.Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{22}}, srcA)})
	if len(ds) != 1 || ds[0].Action != ActionRefuse || ds[0].RefusedBecause != RefusedWhitelist {
		t.Fatalf("decisions %+v, want refuse whitelist", ds)
	}
	if len(e.Mitigations()) != 0 {
		t.Errorf("mitigations %v, want none", mitLines(e))
	}
}

// TestPortScopeEpisode: the uplink's episode owns the claim on the VM port:
// renewed while the flood lasts (no update each interval), released after
// exit_after clean intervals of the uplink, and an operator's release of
// the port keeps the detector out until the episode ends.
func TestPortScopeEpisode(t *testing.T) {
	sig := detect.Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{443}, Spoofed: true, Ports: []string{"vnet3"}}
	e := newEngine(t, nil)
	var got []string
	record := func(at time.Duration, ds []Decision) { got = append(got, lines(at, ds)...) }
	for i := range 3 {
		record(time.Duration(i)*time.Second, e.Step(t0.Add(time.Duration(i)*time.Second), []Observation{sigFlood("eth0", sig)}))
	}
	// A later interval names sources but no port: a flood the ports do not
	// explain (the node's own) is the uplink's episode, throttled there by
	// source, while the port's episode counts a clean interval.
	record(3*time.Second, e.Step(t0.Add(3*time.Second), []Observation{sigFlood("eth0", detect.Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{443}}, srcA)}))
	for i := range 5 {
		at := time.Duration(4+i) * time.Second
		record(at, e.Step(t0.Add(at), []Observation{clean("eth0")}))
	}
	want := []string{"0s throttle vnet3 port", "3s throttle eth0 source 198.51.100.1/32", "7s release vnet3 exit_after", "8s release eth0 exit_after"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	e = newEngine(t, nil)
	e.Step(t0, []Observation{sigFlood("eth0", sig)})
	ds := e.Release(t0.Add(time.Second), "", "vnet3")
	if len(ds) != 1 || ds[0].Action != ActionRelease {
		t.Fatalf("release: %+v", ds)
	}
	if ds := e.Step(t0.Add(2*time.Second), []Observation{sigFlood("eth0", sig)}); len(ds) != 0 {
		t.Errorf("after the operator's release the detector acted again: %+v", ds)
	}
}

// TestEachFloodingPortItsOwnThrottle: VMs flooding at once, or one after
// the other, are each throttled on their own port, whatever their sources
// (spoofed or many), and each claim is released exit_after intervals after
// its own port stops flooding; no uplink throttle slows the other tenants.
func TestEachFloodingPortItsOwnThrottle(t *testing.T) {
	two := detect.Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{80}, Spoofed: true, Ports: []string{"vnet3", "vnet4"},
		VMs: []detect.VM{{Port: "vnet3", Name: "a"}, {Port: "vnet4", Name: "b"}}}
	one := detect.Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{80}, Spoofed: true, Ports: []string{"vnet3"}}
	e := newEngine(t, nil)
	var got []string
	step := func(at time.Duration, obs ...Observation) { got = append(got, lines(at, e.Step(t0.Add(at), obs))...) }
	step(0, sigFlood("eth0", one, srcA, srcB, srcC))
	step(time.Second, sigFlood("eth0", two, srcA, srcB, srcC)) // vnet4 joins while vnet3 is throttled
	if want := []string{
		"vnet3 port sources=[] protocols=[tcp] ports=[80] owners=detector",
		"vnet4 port sources=[] protocols=[tcp] ports=[80] owners=detector",
	}; !slices.Equal(mitLines(e), want) {
		t.Fatalf("mitigations\n\t%s\nwant\n\t%s", strings.Join(mitLines(e), "\n\t"), strings.Join(want, "\n\t"))
	}
	// vnet3 stops; vnet4 goes on, then stops too.
	for i := range 3 {
		step(time.Duration(2+i)*time.Second, sigFlood("eth0", detect.Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{80}, Ports: []string{"vnet4"}}))
	}
	for i := range 5 {
		step(time.Duration(5+i)*time.Second, clean("eth0"))
	}
	want := []string{"0s throttle vnet3 port", "1s throttle vnet4 port", "6s release vnet3 exit_after", "9s release vnet4 exit_after"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if len(e.episodes) != 0 {
		t.Errorf("episodes left: %v", slices.Collect(maps.Keys(e.episodes)))
	}
}

// TestNodeAndVMFloodTogether: the node's own sources flooding beside a VM's
// port are the uplink's part: throttled there by source while the VM is
// throttled on its port.
func TestNodeAndVMFloodTogether(t *testing.T) {
	e := newEngine(t, nil)
	o := sigFlood("eth0", detect.Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{80}, Ports: []string{"vnet3"},
		Sources: []netip.Addr{netip.MustParseAddr(srcA), netip.MustParseAddr(srcB)}}, srcA, srcB)
	o.Unported = []netip.Addr{netip.MustParseAddr(srcB)}
	e.Step(t0, []Observation{o})
	want := []string{
		"eth0 source sources=[198.51.100.2/32] protocols=[tcp] ports=[80] owners=detector",
		"vnet3 port sources=[] protocols=[tcp] ports=[80] owners=detector",
	}
	if !slices.Equal(mitLines(e), want) {
		t.Errorf("mitigations\n\t%s\nwant\n\t%s", strings.Join(mitLines(e), "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestPortsSplitOnlyForScopeAuto: with throttle.scope source or node the
// operator chose the uplink: two flooding ports are one uplink throttle.
func TestPortsSplitOnlyForScopeAuto(t *testing.T) {
	e := newEngine(t, func(c *Config) { c.Scope = shaper.ScopeSource })
	e.Step(t0, []Observation{sigFlood("eth0", detect.Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{80}, Ports: []string{"vnet3", "vnet4"}}, srcA, srcB)})
	if want := []string{"eth0 source sources=[198.51.100.1/32 198.51.100.2/32] protocols=[tcp] ports=[80] owners=detector"}; !slices.Equal(mitLines(e), want) {
		t.Errorf("mitigations %q, want %q", mitLines(e), want)
	}
}

// TestMergedClaims: a manual tcp+udp 80,443 claim and the detector's ICMP
// claim on one interface throttle both: the ICMP claim adds its protocol
// and does not widen the ports to any.
func TestMergedClaims(t *testing.T) {
	e := newEngine(t, nil)
	if _, err := e.Claim(t0, manual("eth0", 80, 443)); err != nil {
		t.Fatal(err)
	}
	ds := e.Step(t0.Add(time.Second), []Observation{sigFlood("eth0", detect.Signature{Protocols: []string{"icmp"}}, srcA, srcB, srcC)})
	if len(ds) != 1 || ds[0].Action != ActionUpdate {
		t.Fatalf("decisions %+v, want one update", ds)
	}
	want := []string{"eth0 node sources=[] protocols=[icmp tcp udp] ports=[80 443] owners=manual,detector"}
	if got := mitLines(e); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestHeldTrafficKept: once the detector holds a claim, what it throttles
// stays as first claimed for the episode, whatever the signature says next
// (throttled, the capture misreads the flood); the next episode starts
// afresh.
func TestHeldTrafficKept(t *testing.T) {
	e := newEngine(t, func(c *Config) { c.ExitAfter = 1 })
	sig := func(protos []string, ports ...uint16) Observation {
		return sigFlood("eth0", detect.Signature{Protocols: protos, DstPorts: ports}, srcA)
	}
	var got []string
	for i, o := range []Observation{
		sig([]string{"udp"}, 8080),
		sig([]string{"udp"}),              // any port now
		sig([]string{"tcp", "udp"}, 8443), // another protocol and port
		sig([]string{"tcp", "other"}),     // a protocol the shaper cannot name
		clean("eth0"),                     // the episode ends
		sig([]string{"tcp", "udp"}, 8443), // a new episode takes the new signature
	} {
		at := time.Duration(i) * time.Second
		got = append(got, lines(at, e.Step(t0.Add(at), []Observation{o}))...)
		got = append(got, mitLines(e)...)
	}
	udp8080 := "eth0 source sources=[198.51.100.1/32] protocols=[udp] ports=[8080] owners=detector"
	want := []string{
		"0s throttle eth0 source 198.51.100.1/32", udp8080, udp8080, udp8080, udp8080,
		"4s release eth0 exit_after",
		"5s throttle eth0 source 198.51.100.1/32",
		"eth0 source sources=[198.51.100.1/32] protocols=[tcp udp] ports=[8443] owners=detector",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
