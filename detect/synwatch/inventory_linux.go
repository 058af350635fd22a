package synwatch

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/attrib"
)

// inventory is what the capture knows of the namespace's interfaces: which
// are VM bridge ports, which to ignore, which addresses each port owns and
// which VM is behind it.
type inventory struct {
	ports  map[uint32]string // ifindex → bridge port name
	ignore []uint32          // neither the uplink nor a bridge port
	owned  map[string]ownedSet
	detect detect.Inventory
}

// spoofed reports whether port emitting src to dst breaks what the port
// owns. A port is judged only in an address family it is known to own an
// address of; link-local and unspecified sources (neighbour discovery,
// DHCP) and multicast or broadcast destinations are never spoofing.
func (inv *inventory) spoofed(port string, src, dst netip.Addr) bool {
	src = src.Unmap()
	if src.IsLinkLocalUnicast() || src.IsUnspecified() || dst.IsMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	own := inv.owned[port]
	if src.Is4() && own.v4 == 0 || src.Is6() && own.v6 == 0 {
		return false
	}
	_, mine := own.addrs[src]
	return !mine
}

// ownedSet is the addresses one port owns, with a count per family.
type ownedSet struct {
	addrs  map[netip.Addr]struct{}
	v4, v6 int
}

// inventoryReader reads the inventory over rtnetlink in one namespace.
type inventoryReader struct {
	h          *netlink.Handle
	tables     *attrib.NetResolver
	uplink     int
	configured map[string][]netip.Addr
	libvirtDir string
}

func openInventory(nsFD, uplink int, configured map[string][]netip.Addr, libvirtDir string) (*inventoryReader, error) {
	var (
		h   *netlink.Handle
		err error
	)
	if nsFD == 0 {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandleAt(netns.NsHandle(nsFD), unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("synwatch: open netlink (netns fd %d): %w", nsFD, err)
	}
	t, err := attrib.OpenNet(attrib.NetOptions{NetNS: nsFD})
	if err != nil {
		h.Close()
		return nil, err
	}
	return &inventoryReader{h: h, tables: t, uplink: uplink, configured: configured, libvirtDir: libvirtDir}, nil
}

func (r *inventoryReader) close() {
	r.h.Close()
	r.tables.Close()
}

// read lists the links: a VM port is any link enslaved to a Linux bridge or
// an Open vSwitch datapath, other than the uplink. Owned addresses come
// from the neighbour and FDB tables plus the configured ones; identities
// from libvirt and the platforms' port names. A failure to read identities
// or tables still returns the ports.
func (r *inventoryReader) read() (inventory, error) {
	links, err := r.h.LinkList()
	if err != nil {
		return inventory{}, fmt.Errorf("synwatch: list links: %w", err)
	}
	kind := make(map[int]string, len(links))
	for _, l := range links {
		kind[l.Attrs().Index] = l.Type()
	}
	inv := inventory{ports: map[uint32]string{}, owned: map[string]ownedSet{}}
	var names []string
	for _, l := range links {
		a := l.Attrs()
		if a.Index == r.uplink {
			continue
		}
		if m := kind[a.MasterIndex]; a.MasterIndex != 0 && (m == "bridge" || m == "openvswitch") {
			inv.ports[uint32(a.Index)] = a.Name
			names = append(names, a.Name)
			continue
		}
		inv.ignore = append(inv.ignore, uint32(a.Index))
	}
	slices.Sort(inv.ignore)
	owned := maps.Clone(r.configured)
	if owned == nil {
		owned = map[string][]netip.Addr{}
	}
	t, terr := r.tables.Tables()
	if terr == nil {
		for p, as := range t.Owned() {
			for _, a := range as {
				if !slices.Contains(owned[p], a) {
					owned[p] = append(owned[p], a)
				}
			}
		}
	}
	for p, as := range owned {
		set := ownedSet{addrs: make(map[netip.Addr]struct{}, len(as))}
		for _, a := range as {
			a = a.Unmap()
			if a.IsLinkLocalUnicast() {
				continue
			}
			set.addrs[a] = struct{}{}
			if a.Is4() {
				set.v4++
			} else {
				set.v6++
			}
		}
		inv.owned[p] = set
	}
	ids, ierr := attrib.Identify(names, r.libvirtDir)
	inv.detect = detect.Inventory{Owned: owned, VMs: ids}
	if terr != nil {
		return inv, terr
	}
	return inv, ierr
}
