package lab

import "net/netip"

// ReturnUplink is the node's second uplink in an asymmetric lab, and
// ReturnAddr4 its address: replies to the node come back on it.
const ReturnUplink = "up1"

// ReturnAddr4 is up1's address; the inet side is wan1 at .1.
var ReturnAddr4 = netip.MustParseAddr("198.19.254.2")

// AddReturnUplink makes routing asymmetric, as on a node with two uplinks
// whose upstream routes return traffic by the other one: it adds up1 (to
// wan1 in the inet namespace) and routes the node's address back through
// it, so the node's packets leave by up0 and the answers arrive on up1.
// Reverse-path filtering is off on the node, as such a node needs.
func (l *Lab) AddReturnUplink() error {
	gw := ReturnAddr4.As4()
	gw[3] = 1
	return runAll([][]string{
		{"ip", "-n", l.Node, "link", "add", ReturnUplink, "type", "veth", "peer", "name", "wan1", "netns", l.Inet},
		{"ip", "-n", l.Node, "addr", "add", ReturnAddr4.String() + "/30", "dev", ReturnUplink},
		{"ip", "-n", l.Inet, "addr", "add", netip.AddrFrom4(gw).String() + "/30", "dev", "wan1"},
		{"ip", "netns", "exec", l.Node, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"},
		{"ip", "-n", l.Node, "link", "set", ReturnUplink, "up"},
		{"ip", "-n", l.Inet, "link", "set", "wan1", "up"},
		{"ip", "netns", "exec", l.Node, "sysctl", "-qw", "net.ipv4.conf." + ReturnUplink + ".rp_filter=0"},
		{"ip", "-n", l.Inet, "route", "add", NodeAddr4.String() + "/32", "via", ReturnAddr4.String(), "dev", "wan1"},
	})
}
