package synwatch

import (
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// kind is what one captured packet counts as.
type kind uint8

const (
	kindNone kind = iota
	kindSynOut
	kindSynAckIn
	kindRstOut
	kindCloseOut
	kindUDPOut
	kindUDPIn
)

// observation is the part of one decoded packet the window accounts.
type observation struct {
	kind      kind
	src, dst  netip.Addr
	dport     uint16
	srcMAC    [6]byte
	hasSrcMAC bool
}

// portSet is a bitmap of the throttled UDP ports.
type portSet [65536 / 64]uint64

func newPortSet(ports []uint16) *portSet {
	var s portSet
	for _, p := range ports {
		s[p/64] |= 1 << (p % 64)
	}
	return &s
}

func (s *portSet) has(p uint16) bool { return s[p/64]&(1<<(p%64)) != 0 }

// decoder turns a captured frame into an observation with gopacket's
// DecodingLayerParser over preallocated layers: no allocation per packet.
type decoder struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	udp     layers.UDP
	parser  *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	ports   *portSet
}

func newDecoder(ports []uint16) *decoder {
	d := &decoder{ports: newPortSet(ports), decoded: make([]gopacket.LayerType, 0, 8)}
	d.parser = gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet,
		&d.eth, &d.dot1q, &d.ip4, &d.ip6, &d.tcp, &d.udp)
	d.parser.IgnoreUnsupported = true
	d.tcp.Options = make([]layers.TCPOption, 0, 16)
	return d
}

// decode classifies frame (which starts at the Ethernet header, possibly
// truncated after the L4 header); outgoing says whether the host sent it.
// It repeats the kernel filter's classification, so it is also correct on
// unfiltered input.
func (d *decoder) decode(frame []byte, outgoing bool) (observation, bool) {
	var o observation
	// Truncated frames return an error after the layers that did decode.
	_ = d.parser.DecodeLayers(frame, &d.decoded)
	var haveIP, haveL4 bool
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeEthernet:
			copy(o.srcMAC[:], d.eth.SrcMAC)
			o.hasSrcMAC = len(d.eth.SrcMAC) == 6
		case layers.LayerTypeIPv4:
			if d.ip4.FragOffset != 0 {
				return o, false
			}
			o.src = netip.AddrFrom4([4]byte(d.ip4.SrcIP.To4()))
			o.dst = netip.AddrFrom4([4]byte(d.ip4.DstIP.To4()))
			haveIP = true
		case layers.LayerTypeIPv6:
			o.src = netip.AddrFrom16([16]byte(d.ip6.SrcIP))
			o.dst = netip.AddrFrom16([16]byte(d.ip6.DstIP))
			haveIP = true
		case layers.LayerTypeTCP:
			o.kind, haveL4 = classifyTCP(d.tcp.SYN, d.tcp.ACK, d.tcp.RST, d.tcp.FIN, outgoing), true
			o.dport = uint16(d.tcp.DstPort)
		case layers.LayerTypeUDP:
			o.kind, haveL4 = d.classifyUDP(uint16(d.udp.SrcPort), uint16(d.udp.DstPort), outgoing), true
			o.dport = uint16(d.udp.DstPort)
		}
	}
	if !haveIP || !haveL4 || o.kind == kindNone {
		return observation{}, false
	}
	return o, true
}

// classifyTCP counts as RstOut only a reset without ACK: the one the kernel
// sends for a SYN-ACK it never asked for (RFC 793 takes its sequence number
// from the segment's ACK field and sets no ACK), which is the raw-socket
// flood's tell. An abortive close (SO_LINGER 0) sends RST|ACK; counting it
// would make a crawler that aborts its connections look like a flood; it
// counts, with FIN, as CloseOut: the end of a connection this side completed.
func classifyTCP(syn, ack, rst, fin, outgoing bool) kind {
	switch {
	case outgoing && rst && !ack:
		return kindRstOut
	case outgoing && (fin || rst):
		return kindCloseOut
	case outgoing && syn && !ack:
		return kindSynOut
	case !outgoing && syn && ack && !rst:
		return kindSynAckIn
	}
	return kindNone
}

func (d *decoder) classifyUDP(sport, dport uint16, outgoing bool) kind {
	switch {
	case outgoing && d.ports.has(dport):
		return kindUDPOut
	case !outgoing && d.ports.has(sport):
		return kindUDPIn
	}
	return kindNone
}
