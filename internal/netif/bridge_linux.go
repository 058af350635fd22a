package netif

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// expandBridges replaces every bridge in ws by its uplink ports (see
// uplinkPorts): frames a VM sends through a bridge never pass the bridge's
// own transmit path, so neither a capture nor a qdisc on the bridge sees
// them; on the port that leaves the node, both see every frame, the node's
// own and the VMs'.
func expandBridges(ws []Interface) ([]Interface, error) {
	var out []Interface
	for _, w := range ws {
		link, err := netlink.LinkByName(w.Name)
		if err != nil || link.Type() != "bridge" {
			out = append(out, w) // a missing interface is watched blind until it appears
			continue
		}
		ports, why, err := uplinkPorts(link)
		if err != nil {
			return nil, fmt.Errorf("netif: %s is a bridge (%s): %w; list its uplink port in interfaces", w.Name, w.Reason, err)
		}
		for _, p := range ports {
			if slices.ContainsFunc(out, func(o Interface) bool { return o.Name == p }) {
				continue
			}
			out = append(out, Interface{Name: p, Bridge: w.Name,
				Reason: fmt.Sprintf("uplink port of bridge %s (%s): %s", w.Name, w.Reason, why[p])})
		}
	}
	return out, nil
}

// uplinkPorts returns the ports of bridge br through which traffic leaves
// the node, and why each: the port behind which the bridge's default
// gateway's MAC was learned (bridge FDB), and any port that is a NIC (it
// has a device in sysfs) or stacks on one (bond, team, vlan). A tap, tun or
// veth port is a VM's or a container's unless the gateway sits behind it.
func uplinkPorts(br netlink.Link) ([]string, map[string]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, nil, fmt.Errorf("list interfaces: %w", err)
	}
	byIndex := map[int]netlink.Link{}
	var ports []netlink.Link
	for _, l := range links {
		byIndex[l.Attrs().Index] = l
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports = append(ports, l)
		}
	}
	why := map[string]string{}
	gwPorts, err := gatewayPorts(br)
	if err != nil {
		return nil, nil, err
	}
	for _, idx := range gwPorts {
		if l, ok := byIndex[idx]; ok {
			why[l.Attrs().Name] = "the default gateway's MAC is behind it"
		}
	}
	for _, p := range ports {
		name := p.Attrs().Name
		if _, ok := why[name]; ok {
			continue
		}
		switch kind := p.Type(); {
		case kind == "bond" || kind == "team" || kind == "vlan":
			why[name] = "a " + kind + " port"
		case kind == "device" || kind == "":
			if _, err := os.Stat("/sys/class/net/" + name + "/device"); err == nil {
				why[name] = "a NIC"
			}
		}
	}
	if len(why) == 0 {
		names := make([]string, len(ports))
		for i, p := range ports {
			names[i] = p.Attrs().Name + " (" + p.Type() + ")"
		}
		return nil, nil, fmt.Errorf("no uplink port among %s: no NIC, bond or vlan, and the default gateway's MAC is in no port's FDB", strings.Join(names, ", "))
	}
	var out []string
	for _, p := range ports {
		if _, ok := why[p.Attrs().Name]; ok {
			out = append(out, p.Attrs().Name)
		}
	}
	return out, why, nil
}

// gatewayPorts returns the bridge ports behind which the MACs of br's
// default gateways were learned.
func gatewayPorts(br netlink.Link) ([]int, error) {
	var gws []net.IP
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			if !isDefault(r.Dst) {
				continue
			}
			if r.LinkIndex == br.Attrs().Index && r.Gw != nil {
				gws = append(gws, r.Gw)
			}
			for _, nh := range r.MultiPath {
				if nh.LinkIndex == br.Attrs().Index && nh.Gw != nil {
					gws = append(gws, nh.Gw)
				}
			}
		}
	}
	var macs []net.HardwareAddr
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		neighs, err := netlink.NeighList(br.Attrs().Index, fam)
		if err != nil {
			return nil, fmt.Errorf("list neighbours of %s: %w", br.Attrs().Name, err)
		}
		for _, n := range neighs {
			if n.HardwareAddr != nil && slices.ContainsFunc(gws, n.IP.Equal) {
				macs = append(macs, n.HardwareAddr)
			}
		}
	}
	if len(macs) == 0 {
		return nil, nil
	}
	fdb, err := netlink.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("list the bridge FDB: %w", err)
	}
	var out []int
	for _, e := range fdb {
		if e.MasterIndex != br.Attrs().Index && e.MasterIndex != 0 {
			continue
		}
		if e.LinkIndex != br.Attrs().Index && slices.ContainsFunc(macs, func(m net.HardwareAddr) bool { return m.String() == e.HardwareAddr.String() }) {
			out = append(out, e.LinkIndex)
		}
	}
	return out, nil
}
