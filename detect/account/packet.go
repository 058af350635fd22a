package account

import "net/netip"

// Proto is the transport protocol of a Packet.
type Proto uint8

// Protocols a Packet can carry. Their String forms are the names
// detect.Signature uses.
const (
	ProtoOther Proto = iota
	ProtoTCP
	ProtoUDP
	ProtoICMP // ICMP or ICMPv6
)

var protoNames = [...]string{"other", "tcp", "udp", "icmp"}

func (p Proto) String() string {
	if int(p) < len(protoNames) {
		return protoNames[p]
	}
	return "other"
}

// TCP flag bits as they sit in byte 13 of the TCP header.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagACK uint8 = 0x10
)

// Packet is what the accounting needs of one decoded packet.
type Packet struct {
	// Out is true for traffic the node or a VM sends (toward the uplink),
	// false for replies coming back.
	Out bool
	// Port is the VM bridge port (tap/vnet/veth interface name) the packet
	// entered by (Out) or leaves by (!Out); empty for packets seen on the
	// uplink. A packet seen on a port is counted on the port key only, its
	// copy on the uplink on the source and interface keys, so nothing
	// counts twice on one key.
	Port string
	// Spoofed is set by the capture when a port emits a source address the
	// port does not own (bridge FDB and neighbour tables, or config).
	Spoofed          bool
	Src, Dst         netip.Addr
	Proto            Proto
	TCPFlags         uint8 // FlagSYN | FlagACK …, for Proto TCP
	SrcPort, DstPort uint16
	ICMPEcho         bool   // an echo request (Out) or reply (!Out)
	Length           uint32 // bytes on the wire
}

// Kind is what one packet counts as in Counters.
type Kind uint8

// Kinds of packet the flood rule weighs.
const (
	KindNone     Kind = iota
	KindSynOut        // TCP SYN without ACK, sent
	KindSynAckIn      // TCP SYN|ACK, received
	KindRstOut        // bare RST (no ACK), sent: the answer to a SYN-ACK nobody asked for
	KindCloseOut      // FIN, or RST|ACK, sent: the end of a connection this side completed
	KindUDPOut
	KindUDPIn
	KindICMPOut
	KindICMPIn
)

// Classify says what p counts as. A bare RST is the kernel's answer to a
// SYN-ACK for a handshake it never started (RFC 793: the reset takes its
// sequence number from the segment's ACK field and sets no ACK), the
// raw-socket flood's tell; an abortive close (SO_LINGER 0) sends RST|ACK and
// counts with FIN as a close.
func Classify(p Packet) Kind {
	switch p.Proto {
	case ProtoTCP:
		f := p.TCPFlags
		switch {
		case p.Out && f&FlagRST != 0 && f&FlagACK == 0:
			return KindRstOut
		case p.Out && f&(FlagFIN|FlagRST) != 0:
			return KindCloseOut
		case p.Out && f&FlagSYN != 0 && f&FlagACK == 0:
			return KindSynOut
		case !p.Out && f&(FlagSYN|FlagACK|FlagRST) == FlagSYN|FlagACK:
			return KindSynAckIn
		}
	case ProtoUDP:
		if p.Out {
			return KindUDPOut
		}
		return KindUDPIn
	case ProtoICMP:
		if p.Out {
			return KindICMPOut
		}
		return KindICMPIn
	}
	return KindNone
}
