package lab

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// BridgedNet4 is the uplink's subnet in a bridged lab: the inet side's
// wan0 (Gateway4), the node's br0 (NodeAddr4) and the VMs (BridgedVMAddr)
// share it, as a Proxmox or libvirt bridged hypervisor's VMs share the
// physical network.
var BridgedNet4 = netip.MustParsePrefix("198.19.255.0/24")

// BridgedVMAddr is the address of VM i (1-based) in a bridged lab.
func BridgedVMAddr(i int) netip.Addr {
	b := NodeAddr4.As4()
	b[3] = byte(10 + i)
	return netip.AddrFrom4(b)
}

// buildBridged builds the bridged hypervisor: up0 (the node's NIC) and the
// VMs' vnetN are ports of br0, br0 holds the node's address and default
// route, and the inet side answers for the whole benchmark range. The
// node then pings the gateway so the bridge has learned behind which port
// the gateway is (its FDB), as on any node carrying traffic.
func (l *Lab) buildBridged(o Options) error {
	for _, ns := range []string{l.Node, l.Inet} {
		if err := l.addNS(ns); err != nil {
			return err
		}
	}
	bits := "/" + strconv.Itoa(BridgedNet4.Bits())
	steps := [][]string{
		{"ip", "-n", l.Node, "link", "set", "lo", "up"},
		{"ip", "-n", l.Inet, "link", "set", "lo", "up"},
		{"ip", "-n", l.Node, "link", "add", "br0", "type", "bridge"},
		uplinkVeth(l.Node, l.Inet, o.Queues),
		{"ip", "-n", l.Node, "link", "set", Uplink, "master", "br0"},
		{"ip", "-n", l.Node, "addr", "add", NodeAddr4.String() + bits, "dev", "br0"},
		{"ip", "-n", l.Inet, "addr", "add", Gateway4.String() + bits, "dev", "wan0"},
		{"ip", "-n", l.Node, "link", "set", Uplink, "up"},
		{"ip", "-n", l.Node, "link", "set", "br0", "up"},
		{"ip", "-n", l.Inet, "link", "set", "wan0", "up"},
		{"ip", "-n", l.Node, "route", "add", "default", "via", Gateway4.String(), "dev", "br0"},
		{"ip", "-n", l.Inet, "route", "add", "local", Inet4.String(), "dev", "lo", "table", "main"},
		{"ip", "netns", "exec", l.Inet, "sysctl", "-qw", "net.core.somaxconn=8192", "net.ipv4.tcp_max_syn_backlog=8192"},
	}
	if err := runAll(steps); err != nil {
		return err
	}
	for i := 1; i <= o.VMs; i++ {
		if err := l.addVM(i, netip.PrefixFrom(BridgedVMAddr(i), BridgedNet4.Bits()), Gateway4); err != nil {
			return err
		}
	}
	if err := l.waitBridge(); err != nil {
		return err
	}
	return l.learnGateway()
}

// learnGateway sends one UDP datagram from the node to the gateway (the
// ARP exchange before it is what counts) until the bridge's FDB has the
// gateway's MAC behind up0.
func (l *Lab) learnGateway() error {
	out, err := output("ip", "-n", l.Inet, "-br", "link", "show", "wan0")
	if err != nil {
		return err
	}
	f := strings.Fields(out)
	if len(f) < 3 {
		return fmt.Errorf("lab: no MAC for wan0 in %q", out)
	}
	want := f[2] + " dev " + Uplink
	deadline := time.Now().Add(5 * time.Second)
	for {
		_ = run("ip", "netns", "exec", l.Node, "bash", "-c", "echo > /dev/udp/"+Gateway4.String()+"/9")
		fdb, err := output("ip", "netns", "exec", l.Node, "bridge", "fdb", "show", "br", "br0")
		if err == nil && strings.Contains(fdb, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: the bridge never learned the gateway behind %s: %v\n%s", Uplink, err, fdb)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
