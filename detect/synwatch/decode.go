package synwatch

import (
	"net/netip"

	"github.com/egressguard/egressguard/detect/packet"
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

// decoder turns a captured frame into an observation by walking its headers
// with package packet (VLAN tags, IPv4 options, IPv6 extension headers): no
// allocation per packet.
type decoder struct {
	pkt   packet.Packet
	ports *portSet
}

func newDecoder(ports []uint16) *decoder {
	return &decoder{ports: newPortSet(ports)}
}

// decode classifies frame (which starts at the Ethernet header, possibly
// truncated after the L4 header); outgoing says whether the host sent it.
// It repeats the kernel filter's classification, so it is also correct on
// unfiltered input.
func (d *decoder) decode(frame []byte, outgoing bool) (observation, bool) {
	// A frame cut short after the transport header's ports and flags still
	// counts: the capture keeps only Snaplen bytes.
	_ = packet.Decode(packet.LinkEthernet, frame, &d.pkt)
	return d.classify(&d.pkt, outgoing)
}

// classify turns a decoded packet into an observation; fragments other than
// the first carry no transport header and count as nothing.
func (d *decoder) classify(p *packet.Packet, outgoing bool) (observation, bool) {
	if p.IPVersion == 0 || !p.HasL4 {
		return observation{}, false
	}
	o := observation{src: p.Src, dst: p.Dst, dport: p.DstPort, srcMAC: p.SrcMAC, hasSrcMAC: p.HasSrcMAC}
	switch p.Proto {
	case packet.ProtoTCP:
		f := p.TCPFlags
		o.kind = classifyTCP(f&packet.TCPFlagSYN != 0, f&packet.TCPFlagACK != 0, f&packet.TCPFlagRST != 0, f&packet.TCPFlagFIN != 0, outgoing)
	case packet.ProtoUDP:
		o.kind = d.classifyUDP(p.SrcPort, p.DstPort, outgoing)
	}
	if o.kind == kindNone {
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
