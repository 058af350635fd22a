package agent

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/egressguard/egressguard/detect"
)

// TestUnported: only the node's own addresses flooding from behind no VM
// port are the uplink's part of a flood.
func TestUnported(t *testing.T) {
	node, vm, placed := netip.MustParseAddr("198.19.255.2"), netip.MustParseAddr("198.19.128.11"), netip.MustParseAddr("198.19.128.12")
	local := map[netip.Addr]bool{node: true}
	v := detect.Verdict{Keys: []detect.KeyVerdict{
		{Key: "source " + node.String(), Source: node, State: detect.StateFlood},
		{Key: "source " + vm.String(), Source: vm, State: detect.StateFlood}, // not the node's, unplaced
		{Key: "source " + placed.String(), Source: placed, State: detect.StateFlood, Signature: detect.Signature{Ports: []string{"vnet2"}}},
		{Key: "port vnet1", Port: "vnet1", State: detect.StateFlood},
	}}
	if got := unported(v, local); !slices.Equal(got, []netip.Addr{node}) {
		t.Errorf("unported = %v, want [%s]", got, node)
	}
	// A node address a flooding port names as its own is that port's.
	v.Keys[3].Signature.Sources = []netip.Addr{node}
	if got := unported(v, local); len(got) != 0 {
		t.Errorf("unported = %v, want none", got)
	}
	if got := unported(v, nil); len(got) != 0 {
		t.Errorf("unported without local addresses = %v, want none", got)
	}
}
