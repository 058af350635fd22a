package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// LinkType is a capture's link-layer header type, numbered as pcap's
// LINKTYPE_ values (https://www.tcpdump.org/linktypes.html).
type LinkType uint16

// The link types Decode reads.
const (
	LinkEthernet  LinkType = 1   // LINKTYPE_ETHERNET
	LinkRaw       LinkType = 101 // LINKTYPE_RAW: IPv4 or IPv6, no link header
	LinkLinuxSLL  LinkType = 113 // LINKTYPE_LINUX_SLL: Linux cooked capture v1
	LinkIPv4      LinkType = 228 // LINKTYPE_IPV4
	LinkIPv6      LinkType = 229 // LINKTYPE_IPV6
	LinkNFLOG     LinkType = 239 // LINKTYPE_NFLOG: Linux netfilter log
	LinkLinuxSLL2 LinkType = 276 // LINKTYPE_LINUX_SLL2: Linux cooked capture v2
)

// Supported reports whether Decode reads link type l.
func (l LinkType) Supported() bool {
	switch l {
	case LinkEthernet, LinkRaw, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkNFLOG, LinkLinuxSLL2:
		return true
	}
	return false
}

func (l LinkType) String() string {
	switch l {
	case LinkEthernet:
		return "ethernet"
	case LinkRaw:
		return "raw"
	case LinkLinuxSLL:
		return "linux_sll"
	case LinkIPv4:
		return "ipv4"
	case LinkIPv6:
		return "ipv6"
	case LinkNFLOG:
		return "nflog"
	case LinkLinuxSLL2:
		return "linux_sll2"
	}
	return fmt.Sprintf("linktype %d", uint16(l))
}

// Direction is which way a packet went, as far as the capture recorded it.
type Direction uint8

// Directions: Linux cooked captures record PACKET_OUTGOING (sent by the
// capturing host) or one of the receive types (host, broadcast, multicast,
// other host); other link types record none.
const (
	DirUnknown Direction = iota
	DirIn
	DirOut
)

// Fragment is a packet's place in IP fragmentation.
type Fragment uint8

// FragNone: not a fragment. FragFirst: offset 0 with more to come, it
// carries the transport header (possibly cut short). FragLater: offset > 0,
// no transport header.
const (
	FragNone Fragment = iota
	FragFirst
	FragLater
)

// IP protocol numbers Decode knows (IANA "Assigned Internet Protocol Numbers").
const (
	ProtoHopByHop = 0
	ProtoICMP     = 1
	ProtoTCP      = 6
	ProtoUDP      = 17
	ProtoRouting  = 43
	ProtoFragment = 44
	ProtoESP      = 50
	ProtoAH       = 51
	ProtoICMPv6   = 58
	ProtoNoNext   = 59
	ProtoDstOpts  = 60
	ProtoMobility = 135
	ProtoHIP      = 139
	ProtoShim6    = 140
)

// TCP flag bits as Packet.TCPFlags holds them: the flags byte (offset 13)
// in the low 8 bits and AE (the former NS bit, RFC 3540 / AccECN) as 0x100.
const (
	TCPFlagFIN = 0x001
	TCPFlagSYN = 0x002
	TCPFlagRST = 0x004
	TCPFlagPSH = 0x008
	TCPFlagACK = 0x010
	TCPFlagURG = 0x020
	TCPFlagECE = 0x040
	TCPFlagCWR = 0x080
	TCPFlagAE  = 0x100
)

// MaxVLANs is how many VLAN ids Packet keeps; deeper stacks are walked and
// counted in Packet.NumVLANs but their ids are not kept.
const MaxVLANs = 4

// Errors Decode returns. They are values, so returning one never allocates;
// Packet holds whatever was decoded before the error.
var (
	ErrUnsupportedLink = errors.New("unsupported link type")
	ErrTruncated       = errors.New("frame ends inside a header")
	ErrMalformed       = errors.New("malformed header")
)

// Packet is what Decode read from one frame. Offsets and lengths are in
// bytes; Offsets are from the start of the frame.
type Packet struct {
	Link      LinkType
	Direction Direction
	// PacketType is the cooked capture's sll_pkttype (0 host, 1 broadcast,
	// 2 multicast, 3 other host, 4 outgoing), valid when HasPacketType.
	PacketType    uint8
	HasPacketType bool

	SrcMAC    [6]byte
	HasSrcMAC bool
	VLANs     [MaxVLANs]uint16 // VLAN ids, outermost first
	NumVLANs  int              // tags walked (may exceed MaxVLANs)
	EtherType uint16           // protocol after the tags; 0 for raw IP
	MPLS      int              // MPLS labels walked (RFC 3032 label stack)

	IPVersion uint8 // 4, 6, or 0 when the frame holds no IP packet
	Src, Dst  netip.Addr
	IPOffset  int
	// IPLength is the IP packet's length as its header states: IPv4 total
	// length; IPv6 40 + payload length, or the Jumbo Payload option's value
	// + 40 for a jumbogram (payload length 0).
	IPLength      int
	IPv4Options   int  // IPv4 header bytes beyond 20 (IHL*4 - 20)
	BadIPv4Option bool // an option's length runs past the header (the header length still holds)
	ExtHeaders    int  // IPv6 extension headers walked

	Frag       Fragment
	FragOffset int    // fragment offset in bytes
	FragID     uint32 // IPv4 identification or IPv6 fragment identification

	// Proto is the transport protocol: for IPv6 the next header after the
	// extension headers (ESP and No Next Header end the walk there).
	Proto     uint8
	L4Offset  int  // where the transport header starts
	HasL4     bool // the ports and flags (TCP: first 14 bytes), ports (UDP) or type and code (ICMP) are in the frame
	SrcPort   uint16
	DstPort   uint16
	TCPFlags  uint16
	ICMPType  uint8
	ICMPCode  uint8
	FrameLen  int
	L4Payload int // bytes after the transport header per the IP length (0 when unknown)
}

// Decode walks frame, captured with link type link, into p (reset first).
// It returns nil when every header present was read (a frame that is not
// IP, such as ARP, is not an error: IPVersion stays 0), ErrTruncated when
// the frame ends inside a header it needed, ErrMalformed when a header's
// own fields are impossible, ErrUnsupportedLink for other link types. It
// never allocates and never panics.
func Decode(link LinkType, frame []byte, p *Packet) error {
	*p = Packet{Link: link, FrameLen: len(frame)}
	switch link {
	case LinkEthernet:
		if len(frame) < 14 {
			return ErrTruncated
		}
		copy(p.SrcMAC[:], frame[6:12])
		p.HasSrcMAC = true
		return p.etherType(frame, 12)
	case LinkLinuxSLL:
		// pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
		if len(frame) < 16 {
			return ErrTruncated
		}
		p.setPacketType(uint8(binary.BigEndian.Uint16(frame[0:])))
		if binary.BigEndian.Uint16(frame[2:]) == arphrdEther && binary.BigEndian.Uint16(frame[4:]) == 6 {
			copy(p.SrcMAC[:], frame[6:12])
			p.HasSrcMAC = true
		}
		return p.etherType(frame, 14)
	case LinkLinuxSLL2:
		// protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
		if len(frame) < 20 {
			return ErrTruncated
		}
		p.setPacketType(frame[10])
		if binary.BigEndian.Uint16(frame[8:]) == arphrdEther && frame[11] == 6 {
			copy(p.SrcMAC[:], frame[12:18])
			p.HasSrcMAC = true
		}
		return p.etherTypeAt(frame, binary.BigEndian.Uint16(frame[0:]), 20)
	case LinkRaw:
		if len(frame) < 1 {
			return ErrTruncated
		}
		return p.ip(frame, 0)
	case LinkIPv4, LinkIPv6:
		return p.ip(frame, 0)
	case LinkNFLOG:
		return p.nflog(frame)
	}
	return ErrUnsupportedLink
}

const arphrdEther = 1

// EtherTypes of the tags and protocols Decode walks.
const (
	etherIPv4      = 0x0800
	etherIPv6      = 0x86dd
	etherDot1Q     = 0x8100
	etherDot1AD    = 0x88a8
	etherQinQ9100  = 0x9100 // pre-standard Q-in-Q TPIDs still seen on switches
	etherQinQ9200  = 0x9200
	etherMPLS      = 0x8847
	etherMPLSMulti = 0x8848
	maxTagsWalked  = 16
	packetOutgoing = 4
)

func (p *Packet) setPacketType(t uint8) {
	p.PacketType, p.HasPacketType = t, true
	switch {
	case t == packetOutgoing:
		p.Direction = DirOut
	case t <= 3:
		p.Direction = DirIn
	}
}

// etherType reads the EtherType at off and walks on from there.
func (p *Packet) etherType(frame []byte, off int) error {
	return p.etherTypeAt(frame, binary.BigEndian.Uint16(frame[off:]), off+2)
}

// etherTypeAt walks any VLAN tags starting with EtherType et whose payload
// begins at off, then the IP header.
func (p *Packet) etherTypeAt(frame []byte, et uint16, off int) error {
	for et == etherDot1Q || et == etherDot1AD || et == etherQinQ9100 || et == etherQinQ9200 {
		if p.NumVLANs == maxTagsWalked {
			return ErrMalformed
		}
		if len(frame) < off+4 {
			return ErrTruncated
		}
		if p.NumVLANs < MaxVLANs {
			p.VLANs[p.NumVLANs] = binary.BigEndian.Uint16(frame[off:]) & 0x0fff
		}
		p.NumVLANs++
		et = binary.BigEndian.Uint16(frame[off+2:])
		off += 4
	}
	p.EtherType = et
	switch et {
	case etherMPLS, etherMPLSMulti:
		// Labels until the bottom-of-stack bit; then IP, told by its version nibble.
		for {
			if len(frame) < off+4 {
				return ErrTruncated
			}
			p.MPLS++
			bottom := frame[off+2]&1 != 0
			off += 4
			if bottom {
				break
			}
			if p.MPLS == maxTagsWalked {
				return ErrMalformed
			}
		}
		if len(frame) > off && (frame[off]>>4 == 4 || frame[off]>>4 == 6) {
			return p.ip(frame, off)
		}
		return nil
	case etherIPv4, etherIPv6:
		if err := p.ip(frame, off); err != nil {
			return err
		}
		if p.IPVersion != 4 && et == etherIPv4 || p.IPVersion != 6 && et == etherIPv6 {
			return ErrMalformed
		}
	}
	return nil
}

// nflog walks the NFLOG TLVs (lengths and types in the capturing host's
// byte order, little-endian on every Linux capture we know of) to the
// NFULA_PAYLOAD attribute, which holds the IP packet.
func (p *Packet) nflog(frame []byte) error {
	const nfulaPayload = 9
	if len(frame) < 4 {
		return ErrTruncated
	}
	for off := 4; ; {
		if len(frame) < off+4 {
			return ErrTruncated
		}
		n := int(binary.LittleEndian.Uint16(frame[off:]))
		typ := binary.LittleEndian.Uint16(frame[off+2:]) & 0x7fff
		if n < 4 {
			return ErrMalformed
		}
		if typ == nfulaPayload {
			end := min(off+n, len(frame))
			return p.ip(frame[:end], off+4)
		}
		off += (n + 3) &^ 3
	}
}

// ip reads an IPv4 or IPv6 header at off.
func (p *Packet) ip(frame []byte, off int) error {
	if len(frame) < off+1 {
		return ErrTruncated
	}
	switch frame[off] >> 4 {
	case 4:
		return p.ipv4(frame, off)
	case 6:
		return p.ipv6(frame, off)
	}
	return ErrMalformed
}

func (p *Packet) ipv4(frame []byte, off int) error {
	p.IPVersion, p.IPOffset = 4, off
	if len(frame) < off+20 {
		return ErrTruncated
	}
	h := frame[off:]
	hl := int(h[0]&0x0f) * 4
	if hl < 20 {
		return ErrMalformed
	}
	p.IPLength = int(binary.BigEndian.Uint16(h[2:]))
	p.FragID = uint32(binary.BigEndian.Uint16(h[4:]))
	frag := binary.BigEndian.Uint16(h[6:])
	p.FragOffset = int(frag&0x1fff) * 8
	switch {
	case p.FragOffset > 0:
		p.Frag = FragLater
	case frag&0x2000 != 0:
		p.Frag = FragFirst
	}
	p.Proto = h[9]
	p.Src = netip.AddrFrom4([4]byte(h[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(h[16:20]))
	p.IPv4Options = hl - 20
	// Ethernet pads short frames: read no header past the packet's end. A
	// total length of 0 is what TSO super-segments carry; the frame holds then.
	if p.IPLength != 0 {
		if p.IPLength < hl {
			return ErrMalformed
		}
		frame = frame[:min(len(frame), off+p.IPLength)]
	}
	if len(frame) < off+hl {
		return ErrTruncated
	}
	p.BadIPv4Option = !validIPv4Options(h[20:hl])
	p.L4Offset = off + hl
	if p.Frag == FragLater {
		return nil
	}
	return p.transport(frame, p.IPLength-hl)
}

// validIPv4Options reports whether the options' lengths tile the option
// space (RFC 791 §3.1: EOL and NOP are one byte, others carry a length ≥ 2).
func validIPv4Options(o []byte) bool {
	for i := 0; i < len(o); {
		switch o[i] {
		case 0: // end of option list
			return true
		case 1: // no operation
			i++
			continue
		}
		if i+1 >= len(o) || o[i+1] < 2 || i+int(o[i+1]) > len(o) {
			return false
		}
		i += int(o[i+1])
	}
	return true
}

func (p *Packet) ipv6(frame []byte, off int) error {
	p.IPVersion, p.IPOffset = 6, off
	if len(frame) < off+40 {
		return ErrTruncated
	}
	h := frame[off:]
	payload := int(binary.BigEndian.Uint16(h[4:]))
	next := h[6]
	p.Src = netip.AddrFrom16([16]byte(h[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(h[24:40]))
	p.IPLength = 40 + payload
	if payload != 0 { // 0: a jumbogram or a GSO super-segment; the frame holds
		frame = frame[:min(len(frame), off+p.IPLength)]
	}
	at := off + 40
	for {
		p.Proto = next
		switch next {
		case ProtoHopByHop, ProtoRouting, ProtoDstOpts, ProtoMobility, ProtoHIP, ProtoShim6:
			// RFC 8200 §4: next header, length in 8-octet units not counting the first 8.
			if len(frame) < at+2 {
				return ErrTruncated
			}
			n := (int(frame[at+1]) + 1) * 8
			if len(frame) < at+n {
				return ErrTruncated
			}
			if next == ProtoHopByHop && payload == 0 {
				if j, ok := jumboPayload(frame[at+2 : at+n]); ok {
					p.IPLength = 40 + j
				}
			}
			next = frame[at]
			at += n
		case ProtoAH:
			// RFC 4302 §2.2: length in 4-octet units minus 2.
			if len(frame) < at+2 {
				return ErrTruncated
			}
			n := (int(frame[at+1]) + 2) * 4
			if len(frame) < at+n {
				return ErrTruncated
			}
			next = frame[at]
			at += n
		case ProtoFragment:
			// RFC 8200 §4.5: fixed 8 bytes.
			if len(frame) < at+8 {
				return ErrTruncated
			}
			fo := binary.BigEndian.Uint16(frame[at+2:])
			p.FragOffset = int(fo&0xfff8) / 8 * 8
			p.FragID = binary.BigEndian.Uint32(frame[at+4:])
			switch {
			case p.FragOffset > 0:
				p.Frag = FragLater
			case fo&1 != 0:
				p.Frag = FragFirst
			}
			next = frame[at]
			at += 8
			if p.Frag == FragLater {
				p.ExtHeaders++
				p.Proto, p.L4Offset = next, at
				return nil
			}
		default:
			p.L4Offset = at
			if next == ProtoESP || next == ProtoNoNext {
				return nil
			}
			return p.transport(frame, p.IPLength-(at-off))
		}
		p.ExtHeaders++
	}
}

// jumboPayload finds the Jumbo Payload option (RFC 2675, type 0xC2, 4-byte
// length) among hop-by-hop options.
func jumboPayload(o []byte) (int, bool) {
	for i := 0; i < len(o); {
		if o[i] == 0 { // Pad1
			i++
			continue
		}
		if i+1 >= len(o) {
			return 0, false
		}
		n := int(o[i+1])
		if o[i] == 0xc2 && n == 4 && i+6 <= len(o) {
			return int(binary.BigEndian.Uint32(o[i+2:])), true
		}
		i += 2 + n
	}
	return 0, false
}

// transport reads the fixed part of the TCP, UDP, ICMP or ICMPv6 header at
// p.L4Offset; ipPayload is the bytes from there to the IP packet's end.
func (p *Packet) transport(frame []byte, ipPayload int) error {
	h := frame[p.L4Offset:]
	hdr := 0
	switch p.Proto {
	case ProtoTCP:
		if len(h) < 14 {
			return ErrTruncated
		}
		p.SrcPort = binary.BigEndian.Uint16(h[0:])
		p.DstPort = binary.BigEndian.Uint16(h[2:])
		p.TCPFlags = uint16(h[13]) | uint16(h[12]&1)<<8
		hdr = int(h[12]>>4) * 4
		if hdr < 20 {
			return ErrMalformed
		}
	case ProtoUDP:
		if len(h) < 8 {
			return ErrTruncated
		}
		p.SrcPort = binary.BigEndian.Uint16(h[0:])
		p.DstPort = binary.BigEndian.Uint16(h[2:])
		hdr = 8
	case ProtoICMP, ProtoICMPv6:
		if len(h) < 4 {
			return ErrTruncated
		}
		p.ICMPType, p.ICMPCode = h[0], h[1]
		hdr = 4
	default:
		return nil
	}
	p.HasL4 = true
	if ipPayload > hdr {
		p.L4Payload = ipPayload - hdr
	}
	return nil
}
