package synwatch

import (
	"fmt"
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
	if _, mine := own.addrs[src]; mine {
		return false
	}
	for _, p := range own.prefixes {
		if p.Contains(src) {
			return false
		}
	}
	return true
}

// ownedSet is what one port owns: learned addresses, configured prefixes
// wider than one address, and a count of both per family.
type ownedSet struct {
	addrs    map[netip.Addr]struct{}
	prefixes []netip.Prefix
	v4, v6   int
}

// ownedSets merges the addresses each port was learned to own with the
// configured prefixes. It returns the sets the spoofing check reads and
// the addresses per port that name a port's sources in a signature: the
// learned ones and the configured single addresses. Link-local addresses
// are left out (never judged).
func ownedSets(learned map[string][]netip.Addr, configured detect.Owned) (map[string]ownedSet, map[string][]netip.Addr) {
	sets := map[string]ownedSet{}
	addrs := map[string][]netip.Addr{}
	get := func(port string) ownedSet {
		set, ok := sets[port]
		if !ok {
			set.addrs = map[netip.Addr]struct{}{}
		}
		return set
	}
	addAddr := func(port string, a netip.Addr) {
		a = a.Unmap()
		set := get(port)
		if _, dup := set.addrs[a]; dup || a.IsLinkLocalUnicast() {
			sets[port] = set
			return
		}
		set.addrs[a] = struct{}{}
		if a.Is4() {
			set.v4++
		} else {
			set.v6++
		}
		sets[port] = set
		addrs[port] = append(addrs[port], a)
	}
	for port, ps := range configured {
		for _, p := range ps {
			if p.IsSingleIP() {
				addAddr(port, p.Addr())
				continue
			}
			set := get(port)
			set.prefixes = append(set.prefixes, p.Masked())
			if p.Addr().Is4() {
				set.v4++
			} else {
				set.v6++
			}
			sets[port] = set
		}
	}
	for port, as := range learned {
		for _, a := range as {
			addAddr(port, a)
		}
	}
	return sets, addrs
}

// inventoryReader reads the inventory over rtnetlink in one namespace.
type inventoryReader struct {
	h          *netlink.Handle
	tables     *attrib.NetResolver
	uplink     int
	libvirtDir string
}

func openInventory(nsFD, uplink int, libvirtDir string) (*inventoryReader, error) {
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
	return &inventoryReader{h: h, tables: t, uplink: uplink, libvirtDir: libvirtDir}, nil
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
func (r *inventoryReader) read(configured detect.Owned) (inventory, error) {
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
	var learned map[string][]netip.Addr
	t, terr := r.tables.Tables()
	if terr == nil {
		learned = t.Owned()
	}
	var owned map[string][]netip.Addr
	inv.owned, owned = ownedSets(learned, configured)
	ids, ierr := attrib.Identify(names, r.libvirtDir)
	inv.detect = detect.Inventory{Owned: owned, VMs: ids}
	if terr != nil {
		return inv, terr
	}
	return inv, ierr
}
