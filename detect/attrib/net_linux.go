package attrib

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetOptions configures a NetResolver.
type NetOptions struct {
	// NetNS is an open file descriptor of the network namespace to read
	// (the one holding the bridge); 0 means the caller's own.
	NetNS int
}

// NetResolver reads the neighbour table, the bridge FDB and the link names
// over rtnetlink, in one network namespace.
type NetResolver struct {
	h *netlink.Handle
}

// OpenNet opens a netlink handle in the namespace o names.
func OpenNet(o NetOptions) (*NetResolver, error) {
	var (
		h   *netlink.Handle
		err error
	)
	if o.NetNS == 0 {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandleAt(netns.NsHandle(o.NetNS), unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("attrib: open netlink (netns fd %d): %w", o.NetNS, err)
	}
	return &NetResolver{h: h}, nil
}

// Close releases the netlink handle.
func (r *NetResolver) Close() error {
	r.h.Close()
	return nil
}

// Tables reads a snapshot of the neighbour tables (IPv4 and IPv6), the learned
// bridge FDB entries and the link names.
func (r *NetResolver) Tables() (Tables, error) {
	links, err := r.h.LinkList()
	if err != nil {
		return Tables{}, fmt.Errorf("attrib: list links: %w", err)
	}
	t := Tables{Links: make(map[int]string, len(links))}
	for _, l := range links {
		t.Links[l.Attrs().Index] = l.Attrs().Name
	}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		ns, err := r.h.NeighList(0, fam)
		if err != nil {
			return Tables{}, fmt.Errorf("attrib: list neighbours (family %d): %w", fam, err)
		}
		for _, n := range ns {
			a, ok := netip.AddrFromSlice(n.IP)
			if !ok || len(n.HardwareAddr) == 0 || n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) != 0 {
				continue
			}
			t.Neighbours = append(t.Neighbours, Neighbour{Addr: a.Unmap(), MAC: n.HardwareAddr, LinkIndex: n.LinkIndex})
		}
	}
	fdb, err := r.h.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return Tables{}, fmt.Errorf("attrib: list bridge fdb: %w", err)
	}
	for _, e := range fdb {
		// Permanent entries are the bridge's and its ports' own addresses, and
		// entries without a master are a device's own (self) lists: neither
		// says which port a guest's frames entered on.
		if e.MasterIndex == 0 || e.State&netlink.NUD_PERMANENT != 0 || len(e.HardwareAddr) == 0 {
			continue
		}
		t.FDB = append(t.FDB, FDBEntry{MAC: e.HardwareAddr, PortIndex: e.LinkIndex, BridgeIndex: e.MasterIndex, VLAN: e.Vlan})
	}
	return t, nil
}
