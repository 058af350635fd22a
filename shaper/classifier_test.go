package shaper

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
)

// frame builds an Ethernet frame (with vlans 802.1Q tags) around ls.
func frame(t *testing.T, vlans int, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	var all []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: etherType(ls[0])}
	if vlans > 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
	}
	all = append(all, eth)
	for i := range vlans {
		next := layers.EthernetTypeDot1Q
		if i == vlans-1 {
			next = etherType(ls[0])
		}
		all = append(all, &layers.Dot1Q{VLANIdentifier: uint16(10 + i), Type: next})
	}
	all = append(all, ls...)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, all...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func etherType(l gopacket.SerializableLayer) layers.EthernetType {
	if _, ok := l.(*layers.IPv6); ok {
		return layers.EthernetTypeIPv6
	}
	return layers.EthernetTypeIPv4
}

func ip4(proto layers.IPProtocol, src string, opts ...layers.IPv4Option) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP("198.18.0.1").To4(), Options: opts}
}

func ip6(next layers.IPProtocol, src string) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP(src), DstIP: net.ParseIP("2001:db8:ff::1")}
}

func tcp(sport, dport uint16) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 1000}
}

func udp(sport, dport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
}

// matches runs the Plan's classifier over b in the x/net/bpf interpreter.
func matches(t *testing.T, p Plan, b []byte) bool {
	t.Helper()
	ins, ok := bpf.Disassemble(p.Program)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(b)
	if err != nil {
		t.Fatal(err)
	}
	return n != 0
}

func TestClassifier(t *testing.T) {
	node := validSpec()
	node.WhitelistPorts = []uint16{51820}
	node.WhitelistCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	node.Resolvers = []netip.Addr{netip.MustParseAddr("198.18.0.1")}
	source := validSpec()
	source.Scope, source.Sources = ScopeSource, []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32"), netip.MustParsePrefix("2001:db8:1::/64")}
	anyUDP := validSpec()
	anyUDP.Protocols, anyUDP.Ports = []string{"udp"}, nil
	anyAll := validSpec()
	anyAll.Protocols, anyAll.Ports = nil, nil
	icmp := validSpec()
	icmp.Protocols, icmp.Ports = []string{"icmp"}, nil
	synRange := validSpec()
	synRange.Protocols, synRange.Ports = []string{"tcp"}, []PortRange{{1000, 2000}}

	nop := layers.IPv4Option{OptionType: 1, OptionLength: 1}
	eol := layers.IPv4Option{OptionType: 0, OptionLength: 1}
	destOpts := func(next layers.IPProtocol) *layers.IPv6Destination {
		d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: make([]byte, 4)}}}
		d.NextHeader = next
		return d
	}
	nonFirst4 := ip4(layers.IPProtocolUDP, "10.0.0.5")
	nonFirst4.FragOffset = 185
	first4 := ip4(layers.IPProtocolUDP, "10.0.0.5")
	first4.Flags = layers.IPv4MoreFragments
	// A Fragment header (RFC 8200 §4.5) carrying UDP, More Fragments set.
	frag6 := func(offset uint16) gopacket.Payload {
		v := offset<<3 | 1
		return gopacket.Payload{byte(layers.IPProtocolUDP), 0, byte(v >> 8), byte(v), 0, 0, 0, 7}
	}

	tests := []struct {
		name string
		spec Spec
		pkt  []byte
		want bool
	}{
		{"tcp 443", node, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(40000, 443)), true},
		{"tcp 8443 not throttled", node, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(40000, 8443)), false},
		{"udp 80", node, frame(t, 0, ip4(layers.IPProtocolUDP, "10.0.0.5"), udp(40000, 80)), true},
		{"ssh sport 22 to 443 whitelisted", node, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(22, 443)), false},
		{"mesh port whitelisted", node, frame(t, 0, ip4(layers.IPProtocolUDP, "10.0.0.5"), udp(443, 51820)), false},
		{"whitelist cidr", node, frame(t, 0, ip4(layers.IPProtocolTCP, "192.0.2.9"), tcp(4000, 443)), false},
		{"dns to resolver whitelisted", node, frame(t, 0, ip4(layers.IPProtocolUDP, "10.0.0.5"), udp(443, 53)), false},
		{"tcp 443 with IP options", node, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5", nop, nop, nop, eol), tcp(40000, 443)), true},
		{"ssh with IP options whitelisted", node, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5", nop, nop, nop, eol), tcp(40000, 22)), false},
		{"802.1Q tcp 443", node, frame(t, 1, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(40000, 443)), true},
		{"QinQ tcp 443", node, frame(t, 2, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(40000, 443)), true},
		{"802.1Q ssh whitelisted", node, frame(t, 1, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(40000, 22)), false},
		{"ipv6 tcp 443", node, frame(t, 0, ip6(layers.IPProtocolTCP, "2001:db8:1::5"), tcp(40000, 443)), true},
		{"ipv6 dest opts tcp 443", node, frame(t, 0, ip6(layers.IPProtocolIPv6Destination, "2001:db8:1::5"), destOpts(layers.IPProtocolTCP), tcp(40000, 443)), true},
		{"ipv6 dest opts ssh whitelisted", node, frame(t, 0, ip6(layers.IPProtocolIPv6Destination, "2001:db8:1::5"), destOpts(layers.IPProtocolTCP), tcp(40000, 22)), false},
		{"ipv4 first fragment udp 443", node, frame(t, 0, first4, udp(40000, 443)), true},
		{"ipv4 non-first fragment udp", node, frame(t, 0, nonFirst4, gopacket.Payload(make([]byte, 64))), true},
		{"ipv6 first fragment udp 443", node, frame(t, 0, ip6(layers.IPProtocolIPv6Fragment, "2001:db8:1::5"), append(frag6(0), udpBytes(t, 4000, 443)...)), true},
		{"ipv6 first fragment udp 53", node, frame(t, 0, ip6(layers.IPProtocolIPv6Fragment, "2001:db8:1::5"), append(frag6(0), udpBytes(t, 4000, 5353)...)), false},
		{"ipv6 non-first fragment udp", node, frame(t, 0, ip6(layers.IPProtocolIPv6Fragment, "2001:db8:1::5"), frag6(100), gopacket.Payload(make([]byte, 64))), true},
		{"arp passes", node, frame(t, 0, gopacket.Payload(nil))[:14], false},
		{"source: listed v4", source, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(40000, 443)), true},
		{"source: other v4", source, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.6"), tcp(40000, 443)), false},
		{"source: listed v6", source, frame(t, 0, ip6(layers.IPProtocolTCP, "2001:db8:1::77"), tcp(40000, 443)), true},
		{"source: other v6", source, frame(t, 0, ip6(layers.IPProtocolTCP, "2001:db8:2::77"), tcp(40000, 443)), false},
		{"udp any port", anyUDP, frame(t, 0, ip4(layers.IPProtocolUDP, "10.0.0.5"), udp(4000, 9)), true},
		{"udp any port, tcp not", anyUDP, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(4000, 9)), false},
		{"icmp echo", icmp, frame(t, 0, ip4(layers.IPProtocolICMPv4, "10.0.0.5"), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}), true},
		{"icmpv6 echo", icmp, frame(t, 0, ip6(layers.IPProtocolICMPv6, "2001:db8:1::5"), gopacket.Payload(append([]byte{128}, make([]byte, 7)...))), true},
		{"icmpv6 neighbour solicitation whitelisted", icmp, frame(t, 0, ip6(layers.IPProtocolICMPv6, "2001:db8:1::5"), gopacket.Payload(append([]byte{135}, make([]byte, 23)...))), false},
		{"any protocol: neighbour advertisement whitelisted", anyAll, frame(t, 0, ip6(layers.IPProtocolICMPv6, "2001:db8:1::5"), gopacket.Payload(append([]byte{136}, make([]byte, 23)...))), false},
		{"any protocol: gre", anyAll, frame(t, 0, ip4(layers.IPProtocolGRE, "10.0.0.5"), gopacket.Payload(make([]byte, 8))), true},
		{"syn in range", synRange, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(4000, 1500)), true},
		{"syn above range", synRange, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(4000, 2001)), false},
		{"syn below range", synRange, frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(4000, 999)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPlan(tt.spec, Features{})
			if err != nil {
				t.Fatal(err)
			}
			if got := matches(t, p, tt.pkt); got != tt.want {
				t.Errorf("classifier matched %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClassifierLongIPv6Chain(t *testing.T) {
	p, err := NewPlan(validSpec(), Features{})
	if err != nil {
		t.Fatal(err)
	}
	var ls []gopacket.SerializableLayer
	ls = append(ls, ip6(layers.IPProtocolIPv6Destination, "2001:db8:1::5"))
	for range maxIPv6ExtHeaders + 1 {
		d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: make([]byte, 4)}}}
		d.NextHeader = layers.IPProtocolIPv6Destination
		ls = append(ls, d)
	}
	ls[len(ls)-1].(*layers.IPv6Destination).NextHeader = layers.IPProtocolTCP
	ls = append(ls, tcp(4000, 5000))
	if !matches(t, p, frame(t, 0, ls...)) {
		t.Error("an IPv6 chain longer than the walk escaped the throttle")
	}
}

func TestClassifierRawIP(t *testing.T) {
	p, err := NewPlan(validSpec(), Features{})
	if err == nil {
		p, err = p.ForLink(LinkRawIP)
	}
	if err != nil {
		t.Fatal(err)
	}
	pkt := frame(t, 0, ip4(layers.IPProtocolTCP, "10.0.0.5"), tcp(40000, 443))[14:]
	if !matches(t, p, pkt) {
		t.Error("raw IPv4 tcp 443 not matched")
	}
}

// udpBytes is a bare UDP header, for payloads gopacket cannot chain.
func udpBytes(t *testing.T, sport, dport uint16) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := udp(sport, dport).SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
