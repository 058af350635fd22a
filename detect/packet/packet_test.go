package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// Frame builders: each appends one header to b.

func eth(b []byte, src [6]byte, tags []uint32, et uint16) []byte {
	b = append(b, 2, 0, 0, 0, 0, 2)
	b = append(b, src[:]...)
	// Each tag is TPID<<16 | TCI; the EtherType after the last tag is et.
	for _, t := range tags {
		b = binary.BigEndian.AppendUint16(b, uint16(t>>16))
		b = binary.BigEndian.AppendUint16(b, uint16(t))
	}
	return binary.BigEndian.AppendUint16(b, et)
}

func ipv4(b []byte, src, dst string, proto uint8, opts []byte, frag uint16, l4len int) []byte {
	hl := 20 + len(opts)
	b = append(b, 0x40|byte(hl/4), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(hl+l4len))
	b = append(b, 0x12, 0x34)
	b = binary.BigEndian.AppendUint16(b, frag)
	b = append(b, 64, proto, 0, 0)
	b = append(b, netip.MustParseAddr(src).AsSlice()...)
	b = append(b, netip.MustParseAddr(dst).AsSlice()...)
	return append(b, opts...)
}

// ipv6 appends the fixed header; payload is the length of everything after
// it (extension headers included).
func ipv6(b []byte, src, dst string, next uint8, payload int) []byte {
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(payload))
	b = append(b, next, 64)
	b = append(b, netip.MustParseAddr(src).AsSlice()...)
	return append(b, netip.MustParseAddr(dst).AsSlice()...)
}

// ext appends a generic extension header of 8*(units+1) bytes.
func ext(b []byte, next uint8, units uint8) []byte {
	b = append(b, next, units)
	return append(b, make([]byte, 6+8*int(units))...)
}

func fragHdr(b []byte, next uint8, offset uint16, more bool) []byte {
	fo := offset &^ 7
	if more {
		fo |= 1
	}
	b = append(b, next, 0)
	b = binary.BigEndian.AppendUint16(b, fo)
	return binary.BigEndian.AppendUint32(b, 0xabcdef01)
}

func tcp(b []byte, sport, dport uint16, flags uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = append(b, make([]byte, 8)...)
	b = append(b, 5<<4|byte(flags>>8&1), byte(flags))
	return append(b, 0xff, 0xff, 0, 0, 0, 0)
}

func udp(b []byte, sport, dport uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	return append(b, 0, 8, 0, 0)
}

var mac = [6]byte{2, 0, 0, 0, 0, 1}

type want struct {
	err        error
	vlans      []uint16
	ipv        uint8
	src, dst   string
	proto      uint8
	sport      uint16
	dport      uint16
	flags      uint16
	icmpType   uint8
	hasL4      bool
	frag       Fragment
	fragOffset int
	ext        int
	opts       int
	badOpt     bool
	dir        Direction
	l4off      int
}

func cases() []struct {
	name  string
	link  LinkType
	frame []byte
	want  want
} {
	syn := func(b []byte) []byte { return tcp(b, 40000, 443, TCPFlagSYN) }
	type tc = struct {
		name  string
		link  LinkType
		frame []byte
		want  want
	}
	out := []tc{
		{"eth ipv4 syn", LinkEthernet, syn(ipv4(eth(nil, mac, nil, 0x0800), "10.0.0.1", "198.18.0.9", 6, nil, 0x4000, 20)),
			want{ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 6, sport: 40000, dport: 443, flags: TCPFlagSYN, hasL4: true, l4off: 34}},
		{"ipv4 options syn", LinkEthernet, syn(ipv4(eth(nil, mac, nil, 0x0800), "10.0.0.1", "198.18.0.9", 6, []byte{148, 4, 0, 0, 1, 1, 1, 0}, 0, 20)),
			want{ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 6, sport: 40000, dport: 443, flags: TCPFlagSYN, hasL4: true, opts: 8, l4off: 42}},
		{"ipv4 bad option length", LinkEthernet, syn(ipv4(eth(nil, mac, nil, 0x0800), "10.0.0.1", "198.18.0.9", 6, []byte{130, 53, 0, 0}, 0, 20)),
			want{ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 6, sport: 40000, dport: 443, flags: TCPFlagSYN, hasL4: true, opts: 4, badOpt: true, l4off: 38}},
		{"802.1Q syn", LinkEthernet, syn(ipv4(eth(nil, mac, []uint32{0x8100<<16 | 100}, 0x0800), "10.0.0.1", "198.18.0.9", 6, nil, 0, 20)),
			want{vlans: []uint16{100}, ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 6, sport: 40000, dport: 443, flags: TCPFlagSYN, hasL4: true, l4off: 38}},
		{"802.1ad+802.1Q+802.1Q v6 syn", LinkEthernet, syn(ipv6(eth(nil, mac, []uint32{0x88a8<<16 | 200, 0x8100<<16 | 0x2000 | 2001, 0x8100<<16 | 7}, 0x86dd), "2001:db8::1", "2001:db8:ff::9", 6, 20)),
			want{vlans: []uint16{200, 2001, 7}, ipv: 6, src: "2001:db8::1", dst: "2001:db8:ff::9", proto: 6, sport: 40000, dport: 443, flags: TCPFlagSYN, hasL4: true, l4off: 14 + 12 + 40}},
		{"ipv6 dstopts syn", LinkEthernet, syn(ext(ipv6(eth(nil, mac, nil, 0x86dd), "2001:db8::1", "2001:db8:ff::9", ProtoDstOpts, 8+20), ProtoTCP, 0)),
			want{ipv: 6, src: "2001:db8::1", dst: "2001:db8:ff::9", proto: 6, sport: 40000, dport: 443, flags: TCPFlagSYN, hasL4: true, ext: 1, l4off: 14 + 48}},
		{"ipv6 hbh routing frag(first) dstopts ah syn", LinkEthernet,
			syn(append(ext(fragHdr(ext(ext(ipv6(eth(nil, mac, nil, 0x86dd), "2001:db8::1", "2001:db8:ff::9", ProtoHopByHop, 8+24+8+16+16+20),
				ProtoRouting, 0), ProtoFragment, 2), ProtoDstOpts, 0, true), ProtoAH, 1), ProtoTCP, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
			want{ipv: 6, src: "2001:db8::1", dst: "2001:db8:ff::9", proto: 6, sport: 40000, dport: 443, flags: TCPFlagSYN, hasL4: true, frag: FragFirst, ext: 5, l4off: 14 + 40 + 8 + 24 + 8 + 16 + 16}},
		{"ipv6 later fragment", LinkEthernet, append(fragHdr(ipv6(eth(nil, mac, nil, 0x86dd), "2001:db8::1", "2001:db8:ff::9", ProtoFragment, 8+16), ProtoUDP, 1448, false), make([]byte, 16)...),
			want{ipv: 6, src: "2001:db8::1", dst: "2001:db8:ff::9", proto: ProtoUDP, frag: FragLater, fragOffset: 1448, ext: 1, l4off: 14 + 48}},
		{"ipv4 later fragment", LinkEthernet, append(ipv4(eth(nil, mac, nil, 0x0800), "10.0.0.1", "198.18.0.9", 17, nil, 185, 16), make([]byte, 16)...),
			want{ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 17, frag: FragLater, fragOffset: 1480, l4off: 34}},
		{"ipv4 first fragment", LinkEthernet, udp(ipv4(eth(nil, mac, nil, 0x0800), "10.0.0.1", "198.18.0.9", 17, nil, 0x2000, 8), 5000, 53),
			want{ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 17, sport: 5000, dport: 53, hasL4: true, frag: FragFirst, l4off: 34}},
		{"ipv4 first fragment cut inside tcp, ethernet padding", LinkEthernet, append(tcp(ipv4(eth(nil, mac, nil, 0x0800), "10.0.0.1", "198.18.0.9", 6, nil, 0x2000, 8), 1, 2, TCPFlagSYN)[:34+8], make([]byte, 18)...),
			want{err: ErrTruncated, ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 6, frag: FragFirst, l4off: 34}},
		{"ipv6 esp", LinkEthernet, append(ipv6(eth(nil, mac, nil, 0x86dd), "2001:db8::1", "2001:db8:ff::9", ProtoESP, 16), make([]byte, 16)...),
			want{ipv: 6, src: "2001:db8::1", dst: "2001:db8:ff::9", proto: ProtoESP, l4off: 54}},
		{"raw ipv4 icmp", LinkRaw, append(ipv4(nil, "10.0.0.1", "198.18.0.9", 1, nil, 0, 8), 8, 0, 0, 0, 0, 0, 0, 0),
			want{ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 1, icmpType: 8, hasL4: true, l4off: 20}},
		{"raw ipv6 icmpv6", LinkIPv6, append(ipv6(nil, "2001:db8::1", "2001:db8:ff::9", ProtoICMPv6, 8), 128, 0, 0, 0, 0, 0, 0, 0),
			want{ipv: 6, src: "2001:db8::1", dst: "2001:db8:ff::9", proto: ProtoICMPv6, icmpType: 128, hasL4: true, l4off: 40}},
		{"sll out syn with AE", LinkLinuxSLL, tcp(ipv4([]byte{0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 8, 0}, "10.0.0.1", "198.18.0.9", 6, nil, 0, 20), 1, 80, TCPFlagSYN|TCPFlagECE|TCPFlagCWR|TCPFlagAE),
			want{ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 6, sport: 1, dport: 80, flags: 0x1c2, hasL4: true, dir: DirOut, l4off: 36}},
		{"sll2 in synack", LinkLinuxSLL2, tcp(ipv4([]byte{8, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0}, "198.18.0.9", "10.0.0.1", 6, nil, 0, 20), 80, 1, TCPFlagSYN|TCPFlagACK),
			want{ipv: 4, src: "198.18.0.9", dst: "10.0.0.1", proto: 6, sport: 80, dport: 1, flags: TCPFlagSYN | TCPFlagACK, hasL4: true, dir: DirIn, l4off: 40}},
		{"nflog", LinkNFLOG, func() []byte {
			b := []byte{2, 0, 0, 42, 8, 0, 1, 0, 0, 0, 0, 0} // header, one 8-byte TLV
			b = append(b, 4+20+20, 0, 9, 0)                  // NFULA_PAYLOAD
			return tcp(ipv4(b, "10.0.0.1", "198.18.0.9", 6, nil, 0, 20), 2, 80, TCPFlagSYN)
		}(), want{ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 6, sport: 2, dport: 80, flags: TCPFlagSYN, hasL4: true, l4off: 36}},
		{"vlan mpls mpls ipv4 syn", LinkEthernet, syn(ipv4(append(eth(nil, mac, []uint32{0x8100<<16 | 1}, 0x8847), 0, 1, 0x20, 255, 0, 1, 0x01, 255), "10.0.0.1", "198.18.0.9", 6, nil, 0, 20)),
			want{vlans: []uint16{1}, ipv: 4, src: "10.0.0.1", dst: "198.18.0.9", proto: 6, sport: 40000, dport: 443, flags: TCPFlagSYN, hasL4: true, l4off: 14 + 4 + 8 + 20}},
		{"arp", LinkEthernet, append(eth(nil, mac, []uint32{0x88a8<<16 | 200, 0x8100<<16 | 2001}, 0x0806), make([]byte, 28)...),
			want{vlans: []uint16{200, 2001}}},
		{"ethertype says ipv4, header is ipv6", LinkEthernet, syn(ipv6(eth(nil, mac, nil, 0x0800), "2001:db8::1", "2001:db8:ff::9", 6, 20)),
			want{err: ErrMalformed, ipv: 6, src: "2001:db8::1", dst: "2001:db8:ff::9", proto: 6, sport: 40000, dport: 443, flags: TCPFlagSYN, hasL4: true, l4off: 54}},
		{"ipv4 ihl 4", LinkRaw, append([]byte{0x44}, make([]byte, 40)...), want{err: ErrMalformed, ipv: 4}},
		{"unknown link", 147, make([]byte, 60), want{err: ErrUnsupportedLink}},
	}
	return out
}

func check(t *testing.T, p *Packet, err error, w want) {
	t.Helper()
	if !errors.Is(err, w.err) {
		t.Errorf("err = %v, want %v", err, w.err)
	}
	vl := p.VLANs[:min(p.NumVLANs, MaxVLANs)]
	if len(vl) != len(w.vlans) {
		t.Errorf("vlans = %v, want %v", vl, w.vlans)
	} else {
		for i := range vl {
			if vl[i] != w.vlans[i] {
				t.Errorf("vlans = %v, want %v", vl, w.vlans)
			}
		}
	}
	if p.IPVersion != w.ipv {
		t.Errorf("IPVersion = %d, want %d", p.IPVersion, w.ipv)
	}
	if w.src != "" && (p.Src != netip.MustParseAddr(w.src) || p.Dst != netip.MustParseAddr(w.dst)) {
		t.Errorf("%s > %s, want %s > %s", p.Src, p.Dst, w.src, w.dst)
	}
	got := want{err: w.err, vlans: w.vlans, ipv: w.ipv, src: w.src, dst: w.dst,
		proto: p.Proto, sport: p.SrcPort, dport: p.DstPort, flags: p.TCPFlags, icmpType: p.ICMPType, hasL4: p.HasL4,
		frag: p.Frag, fragOffset: p.FragOffset, ext: p.ExtHeaders, opts: p.IPv4Options, badOpt: p.BadIPv4Option, dir: p.Direction, l4off: p.L4Offset}
	if w.ipv == 0 {
		got.l4off = w.l4off
	}
	if got.proto != w.proto || got.sport != w.sport || got.dport != w.dport || got.flags != w.flags || got.icmpType != w.icmpType ||
		got.hasL4 != w.hasL4 || got.frag != w.frag || got.fragOffset != w.fragOffset || got.ext != w.ext || got.opts != w.opts ||
		got.badOpt != w.badOpt || got.dir != w.dir || got.l4off != w.l4off {
		t.Errorf("decoded %+v\nwant    %+v", got, w)
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			err := Decode(tc.link, tc.frame, &p)
			check(t, &p, err, tc.want)
			if tc.want.err == nil && tc.link == LinkEthernet && (p.SrcMAC != mac || !p.HasSrcMAC) {
				t.Errorf("SrcMAC %x", p.SrcMAC)
			}
		})
	}
}

// TestDecodeEveryPrefix cuts every test frame at every length: the walk
// must stop with ErrTruncated (or succeed on what it needs), never panic.
func TestDecodeEveryPrefix(t *testing.T) {
	var p Packet
	for _, tc := range cases() {
		for n := range len(tc.frame) {
			err := Decode(tc.link, tc.frame[:n], &p)
			if err == nil && tc.want.hasL4 && p.HasL4 && n < p.L4Offset {
				t.Errorf("%s cut at %d: transport header claimed at %d", tc.name, n, p.L4Offset)
			}
		}
	}
}

func TestDecodeLongChain(t *testing.T) {
	// 100 extension headers like libpcap's ipv6_ext_headers sample, then UDP.
	var tail []byte
	for i := range 99 {
		next := uint8(ProtoDstOpts)
		if i == 98 {
			next = ProtoUDP
		}
		tail = ext(tail, next, 0)
	}
	tail = udp(tail, 12345, 54321)
	b := append(ext(ipv6(nil, "2001:db8::1", "2001:db8::2", ProtoHopByHop, 8+len(tail)), ProtoDstOpts, 0), tail...)
	var p Packet
	if err := Decode(LinkIPv6, b, &p); err != nil || p.ExtHeaders != 100 || p.DstPort != 54321 || !p.HasL4 {
		t.Fatalf("err %v, %+v", err, p)
	}
}

func TestDecodeJumbogram(t *testing.T) {
	// RFC 2675: payload length 0, Jumbo Payload option in hop-by-hop.
	hbh := []byte{ProtoUDP, 0, 0xc2, 4, 0, 1, 0, 16}
	b := udp(append(ipv6(nil, "2001:db8::1", "2001:db8::2", ProtoHopByHop, 0), hbh...), 1, 2)
	var p Packet
	if err := Decode(LinkIPv6, b, &p); err != nil || p.IPLength != 40+65552 || p.L4Payload != 65552-16 {
		t.Fatalf("err %v, IPLength %d, L4Payload %d", err, p.IPLength, p.L4Payload)
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	cs := cases()
	var p Packet
	allocs := testing.AllocsPerRun(100, func() {
		for _, tc := range cs {
			_ = Decode(tc.link, tc.frame, &p)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %.1f times per %d frames", allocs, len(cs))
	}
}

func BenchmarkDecode(b *testing.B) {
	f := cases()[6].frame
	var p Packet
	for b.Loop() {
		_ = Decode(LinkEthernet, f, &p)
	}
}

func FuzzDecode(f *testing.F) {
	for _, tc := range cases() {
		f.Add(uint16(tc.link), tc.frame)
	}
	f.Fuzz(func(t *testing.T, link uint16, b []byte) {
		var p Packet
		err := Decode(LinkType(link), b, &p)
		if p.HasL4 && (p.L4Offset > len(b) || p.L4Offset < p.IPOffset) {
			t.Fatalf("L4Offset %d outside frame of %d (err %v)", p.L4Offset, len(b), err)
		}
		if err == nil && !LinkType(link).Supported() {
			t.Fatalf("link %d decoded", link)
		}
	})
}
