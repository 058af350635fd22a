package attrib

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
)

// Neighbour is one entry of the neighbour (ARP / NDP) table.
type Neighbour struct {
	Addr      netip.Addr
	MAC       net.HardwareAddr
	LinkIndex int
}

// FDBEntry is one MAC address a bridge learned on one of its ports.
type FDBEntry struct {
	MAC         net.HardwareAddr
	PortIndex   int // the bridge port (tap, vnet, veth) the MAC was seen on
	BridgeIndex int
	VLAN        int
}

// Tables is a snapshot of the kernel tables attribution needs.
type Tables struct {
	Neighbours []Neighbour
	FDB        []FDBEntry     // learned entries only; the bridge's own (permanent) MACs are left out
	Links      map[int]string // interface index → name
}

// Attribution names who sends a flood: its sources with MAC and bridge port,
// and the local processes holding raw or packet sockets.
type Attribution struct {
	Sources   []Source  `json:"sources,omitempty"`
	Processes []Process `json:"processes,omitempty"`
}

// Source is what attribution found for one source address. Fields it could
// not find are empty.
type Source struct {
	Addr netip.Addr `json:"addr"`
	MAC  string     `json:"mac,omitempty"` // colon-hex
	// MACFrom says where MAC came from: "capture" or "neighbour".
	MACFrom string `json:"mac_from,omitempty"`
	// NeighbourInterface is the interface of the neighbour entry, when the
	// MAC came from the neighbour table.
	NeighbourInterface string `json:"neighbour_interface,omitempty"`
	Bridge             string `json:"bridge,omitempty"`
	BridgePort         string `json:"bridge_port,omitempty"` // the tap/vnet/veth the frames entered on
	VLAN               int    `json:"vlan,omitempty"`
}

// Resolve attributes each address: its MAC comes from macs (what the capture
// saw) when present, else from the neighbour table; the MAC then names the
// bridge and port from the FDB. The result is in the order of addrs.
func (t Tables) Resolve(addrs []netip.Addr, macs map[netip.Addr]net.HardwareAddr) []Source {
	out := make([]Source, 0, len(addrs))
	for _, a := range addrs {
		s := Source{Addr: a}
		mac := macs[a]
		if len(mac) > 0 {
			s.MACFrom = "capture"
		}
		if n, ok := t.neighbour(a); ok && (len(mac) == 0 || t.routedHere(mac, n)) {
			mac = n.MAC
			s.MACFrom = "neighbour"
			s.NeighbourInterface = t.Links[n.LinkIndex]
		}
		if len(mac) > 0 {
			s.MAC = mac.String()
			if e, ok := t.port(mac); ok {
				s.Bridge = t.Links[e.BridgeIndex]
				s.BridgePort = t.Links[e.PortIndex]
				s.VLAN = e.VLAN
			}
		}
		out = append(out, s)
	}
	return out
}

// routedHere reports whether a captured MAC is the router's own rather than
// the sender's: no bridge learned it, but the sender's neighbour entry names
// a bridge port (a VM behind br0 whose traffic the node routed to the
// captured uplink).
func (t Tables) routedHere(captured net.HardwareAddr, n Neighbour) bool {
	_, capturedBridged := t.port(captured)
	_, neighbourBridged := t.port(n.MAC)
	return !capturedBridged && neighbourBridged
}

func (t Tables) neighbour(a netip.Addr) (Neighbour, bool) {
	a = a.Unmap()
	for _, n := range t.Neighbours {
		if n.Addr.Unmap() == a && len(n.MAC) > 0 {
			return n, true
		}
	}
	return Neighbour{}, false
}

// port finds the FDB entry for mac. A MAC learned on several VLANs of the same
// port is one answer; the lowest port index wins if the FDB disagrees with
// itself (a MAC moving between ports), so that the result is stable.
func (t Tables) port(mac net.HardwareAddr) (FDBEntry, bool) {
	var found []FDBEntry
	for _, e := range t.FDB {
		if slices.Equal(e.MAC, mac) {
			found = append(found, e)
		}
	}
	if len(found) == 0 {
		return FDBEntry{}, false
	}
	return slices.MinFunc(found, func(a, b FDBEntry) int {
		return cmp.Or(cmp.Compare(a.PortIndex, b.PortIndex), cmp.Compare(a.VLAN, b.VLAN))
	}), true
}

// Owned maps each bridge port to the addresses it owns: those whose
// neighbour entry holds a MAC the bridge learned on that port. A VM that
// talks through this node has ARPed (or sent neighbour solicitations) for
// its gateway, which leaves such an entry.
func (t Tables) Owned() map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, n := range t.Neighbours {
		e, ok := t.port(n.MAC)
		if !ok {
			continue
		}
		name := t.Links[e.PortIndex]
		if name == "" {
			continue
		}
		a := n.Addr.Unmap()
		if !slices.Contains(out[name], a) {
			out[name] = append(out[name], a)
		}
	}
	return out
}
