package attrib

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestResolve(t *testing.T) {
	tables := Tables{
		Neighbours: []Neighbour{
			{Addr: netip.MustParseAddr("10.0.0.11"), MAC: mustMAC("02:00:00:00:00:11"), LinkIndex: 3},
			{Addr: netip.MustParseAddr("2001:db8::11"), MAC: mustMAC("02:00:00:00:00:11"), LinkIndex: 3},
			{Addr: netip.MustParseAddr("10.0.0.50"), MAC: mustMAC("02:00:00:00:00:50"), LinkIndex: 2},
		},
		FDB: []FDBEntry{
			{MAC: mustMAC("02:00:00:00:00:11"), PortIndex: 5, BridgeIndex: 3, VLAN: 10},
			{MAC: mustMAC("02:00:00:00:00:11"), PortIndex: 5, BridgeIndex: 3, VLAN: 1},
			{MAC: mustMAC("02:00:00:00:00:12"), PortIndex: 7, BridgeIndex: 3},
			{MAC: mustMAC("02:00:00:00:00:12"), PortIndex: 6, BridgeIndex: 3},
		},
		Links: map[int]string{2: "eth0", 3: "br0", 5: "vnet0", 6: "tap1", 7: "tap2"},
	}
	tests := []struct {
		name string
		addr string
		macs map[netip.Addr]net.HardwareAddr
		want Source
	}{
		{name: "neighbour then fdb", addr: "10.0.0.11", want: Source{MAC: "02:00:00:00:00:11", MACFrom: "neighbour",
			NeighbourInterface: "br0", Bridge: "br0", BridgePort: "vnet0", VLAN: 1}},
		{name: "ipv6 neighbour", addr: "2001:db8::11", want: Source{MAC: "02:00:00:00:00:11", MACFrom: "neighbour",
			NeighbourInterface: "br0", Bridge: "br0", BridgePort: "vnet0", VLAN: 1}},
		{name: "v4-mapped address", addr: "::ffff:10.0.0.11", want: Source{MAC: "02:00:00:00:00:11", MACFrom: "neighbour",
			NeighbourInterface: "br0", Bridge: "br0", BridgePort: "vnet0", VLAN: 1}},
		{name: "capture mac wins", addr: "10.0.0.11",
			macs: map[netip.Addr]net.HardwareAddr{netip.MustParseAddr("10.0.0.11"): mustMAC("02:00:00:00:00:12")},
			want: Source{MAC: "02:00:00:00:00:12", MACFrom: "capture", Bridge: "br0", BridgePort: "tap1"}},
		{name: "routed from the bridge: the uplink's own capture mac yields to the neighbour", addr: "10.0.0.11",
			macs: map[netip.Addr]net.HardwareAddr{netip.MustParseAddr("10.0.0.11"): mustMAC("02:00:00:00:00:99")},
			want: Source{MAC: "02:00:00:00:00:11", MACFrom: "neighbour", NeighbourInterface: "br0", Bridge: "br0", BridgePort: "vnet0", VLAN: 1}},
		{name: "routed neighbour, not bridged", addr: "10.0.0.50", want: Source{MAC: "02:00:00:00:00:50",
			MACFrom: "neighbour", NeighbourInterface: "eth0"}},
		{name: "unknown", addr: "10.0.0.99", want: Source{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			got := tables.Resolve([]netip.Addr{a}, tt.macs)
			tt.want.Addr = a
			if !slices.Equal(got, []Source{tt.want}) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOwned(t *testing.T) {
	vm1 := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}
	vm2 := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2}
	tb := Tables{
		Links: map[int]string{3: "br0", 4: "vnet1", 5: "vnet2"},
		FDB:   []FDBEntry{{MAC: vm1, PortIndex: 4, BridgeIndex: 3}, {MAC: vm2, PortIndex: 5, BridgeIndex: 3}},
		Neighbours: []Neighbour{
			{Addr: netip.MustParseAddr("198.19.128.11"), MAC: vm1, LinkIndex: 3},
			{Addr: netip.MustParseAddr("2001:db8:1::11"), MAC: vm1, LinkIndex: 3},
			{Addr: netip.MustParseAddr("198.19.128.12"), MAC: vm2, LinkIndex: 3},
			{Addr: netip.MustParseAddr("198.19.255.1"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, LinkIndex: 2},
		},
	}
	got := tb.Owned()
	if len(got) != 2 || len(got["vnet1"]) != 2 || len(got["vnet2"]) != 1 || got["vnet2"][0].String() != "198.19.128.12" {
		t.Fatalf("Owned() = %v", got)
	}
}
