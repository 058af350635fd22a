package agent

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect"
)

func TestOffenders(t *testing.T) {
	vm := netip.MustParseAddr("198.19.128.11")
	node := netip.MustParseAddr("198.19.255.2")
	top := detect.Evidence{TopSources: []detect.SourceCount{{Addr: node}, {Addr: vm}}}
	for _, tc := range []struct {
		name string
		v    detect.Verdict
		want []netip.Addr
	}{
		{"busy node: only the flooding VM", detect.Verdict{Evidence: top, Signature: &detect.Signature{Sources: []netip.Addr{vm}}}, []netip.Addr{vm}},
		{"spoofed: the signature's sources mean nothing", detect.Verdict{Evidence: top, Signature: &detect.Signature{Spoofed: true, Sources: []netip.Addr{vm}}}, []netip.Addr{node, vm}},
		{"no signature", detect.Verdict{Evidence: top}, []netip.Addr{node, vm}},
	} {
		if got := offenders(tc.v); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFloodVMInfoOnlyWhileFlooding: the info series names the flooding VM
// port and its VM while the port floods, and is gone once it does not.
func TestFloodVMInfoOnlyWhileFlooding(t *testing.T) {
	a, capt, _ := newTestAgent(t, func(c *config.Config) { c.Mode = config.ModeObserve })
	vm := detect.VM{Port: "vnet1", Platform: "libvirt", Name: "tenant-b"}
	capt.next = detect.Counts{Keys: []detect.KeyVerdict{{Key: "port vnet1", Port: "vnet1", State: detect.StateFlood,
		Signature: detect.Signature{Protocols: []string{"tcp"}, Ports: []string{"vnet1"}, VMs: []detect.VM{vm}}}}}
	series := func() []string {
		fams, err := a.metrics.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fams {
			if f.GetName() != "egressguard_flood_vm_info" {
				continue
			}
			for _, m := range f.GetMetric() {
				var l []string
				for _, p := range m.GetLabel() {
					l = append(l, p.GetName()+"="+p.GetValue())
				}
				out = append(out, strings.Join(l, ","))
			}
		}
		return out
	}
	a.Tick(context.Background())
	if got := series(); !slices.Equal(got, []string{"interface=up0,port=vnet1,vm=tenant-b"}) {
		t.Fatalf("while flooding: %v", got)
	}
	capt.next = detect.Counts{}
	for range 10 { // past exit_after
		a.Tick(context.Background())
	}
	if got := series(); len(got) != 0 {
		t.Fatalf("after the flood: %v", got)
	}
}
