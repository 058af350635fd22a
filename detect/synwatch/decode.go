package synwatch

import (
	"github.com/egressguard/egressguard/detect/account"
	"github.com/egressguard/egressguard/detect/packet"
)

// kind is what one captured packet counts as in the interface's Counts.
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

// observation is one decoded packet: what the per-key accounting takes,
// and the part the interface's window accounts.
type observation struct {
	account.Packet
	kind      kind
	dataRate  bool // passed the filter 1 in DataEvery: weigh it so
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
// truncated after the L4 header); outgoing says whether the node or a VM
// sent it. It repeats the kernel filter's classification, so it is also
// correct on unfiltered input.
func (d *decoder) decode(frame []byte, outgoing bool) (observation, bool) {
	// A frame cut short after the transport header's ports and flags still
	// counts: the capture keeps only Snaplen bytes.
	_ = packet.Decode(packet.LinkEthernet, frame, &d.pkt)
	return d.classify(&d.pkt, outgoing)
}

// classify turns a decoded packet into an observation: every IP packet
// with its transport header (or of a protocol without ports) is one; a
// fragment other than the first carries no transport header and is none.
// Its Length is the IP length plus the link header, the length on the wire
// whatever the capture kept.
func (d *decoder) classify(p *packet.Packet, outgoing bool) (observation, bool) {
	if p.IPVersion == 0 || p.Frag == packet.FragLater {
		return observation{}, false
	}
	length := p.FrameLen
	if p.IPLength > 0 {
		length = p.IPOffset + p.IPLength
	}
	o := observation{
		Packet:   account.Packet{Out: outgoing, Src: p.Src, Dst: p.Dst, Length: uint32(length)},
		dataRate: true, srcMAC: p.SrcMAC, hasSrcMAC: p.HasSrcMAC,
	}
	switch p.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		if !p.HasL4 {
			return observation{}, false
		}
		o.SrcPort, o.DstPort = p.SrcPort, p.DstPort
		if p.Proto == packet.ProtoUDP {
			o.Proto, o.dataRate = account.ProtoUDP, false
			break
		}
		o.Proto = account.ProtoTCP
		o.TCPFlags = uint8(p.TCPFlags) & (account.FlagFIN | account.FlagSYN | account.FlagRST | account.FlagACK)
		o.dataRate = sampledAsData(o.TCPFlags, outgoing)
	case packet.ProtoICMP, packet.ProtoICMPv6:
		o.Proto, o.dataRate = account.ProtoICMP, false
	}
	o.kind = d.kind(o.Packet)
	return o, true
}

// kind maps the accounting's classification onto the interface window's
// kinds, where UDP counts only to and from the throttled ports.
func (d *decoder) kind(p account.Packet) kind {
	switch account.Classify(p) {
	case account.KindSynOut:
		return kindSynOut
	case account.KindSynAckIn:
		return kindSynAckIn
	case account.KindRstOut:
		return kindRstOut
	case account.KindCloseOut:
		return kindCloseOut
	case account.KindUDPOut:
		if d.ports.has(p.DstPort) {
			return kindUDPOut
		}
	case account.KindUDPIn:
		if d.ports.has(p.SrcPort) {
			return kindUDPIn
		}
	}
	return kindNone
}
