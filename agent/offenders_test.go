package agent

import (
	"net/netip"
	"slices"
	"testing"

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
