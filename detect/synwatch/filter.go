package synwatch

import (
	"fmt"
	"math"

	"golang.org/x/net/bpf"
)

// Snaplen is how many bytes of each passed frame the filter keeps: Ethernet,
// three VLAN tags, an IPv6 header, a few extension headers and a TCP header
// with all options fit.
const Snaplen = 256

// The filter walks at most maxTags VLAN tags (802.1Q or 802.1ad) and
// maxExtHeaders IPv6 extension headers: classic BPF has no loops, so each
// step is unrolled.
const (
	maxTags       = 3
	maxExtHeaders = 4
)

// MaxIgnored bounds the interfaces a filter drops by index, so its jumps
// stay in range.
const MaxIgnored = 200

// DataEvery is the fixed 1-in-N sampling of TCP segments that carry no
// handshake or close (data and pure ACKs) and of IP protocols other than
// TCP, UDP and ICMP: they count only for packets and bytes, and a bulk
// upload must not crowd out the SYNs the flood rule weighs. User space
// multiplies their weight by it.
const DataEvery = 16

// packetOutgoing is sll_pkttype / skb->pkt_type for frames this host sends.
const packetOutgoing = 4

// TCP flag bits at offset 13 of the TCP header.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// Scratch memory slots used by the filter.
const (
	memProto = 0
	memFlags = 1
	memOut   = 2
)

// FilterSpec says what the capture socket's filter passes.
type FilterSpec struct {
	// Uplink is the ifindex of the watched uplink when the socket is bound
	// to every interface (to see VM bridge ports too); 0 for a socket
	// bound to the uplink alone. On the uplink a frame is outbound when the
	// host sends it; on any other interface (a bridge port) when it arrives
	// from the VM.
	Uplink uint32
	// Ignore lists interfaces whose frames are dropped: loopback, the
	// bridges themselves (their frames are copies of the ports'), anything
	// that is neither the uplink nor a VM port.
	Ignore []uint32
	// SampleEvery keeps 1 in N of the frames that pass (1: all).
	SampleEvery uint32
}

// Filter returns the classic BPF program the capture socket runs. It
// accepts, truncated to Snaplen: outbound TCP SYN without ACK, bare RST,
// RST|ACK and FIN; inbound SYN-ACK; every UDP and ICMP/ICMPv6 packet both
// ways; and 1 in DataEvery of the other TCP segments and other IP
// protocols. IPv4 with or without options (first fragments only) and IPv6
// behind up to maxExtHeaders hop-by-hop, destination options, routing,
// fragment (first only) and AH headers, under up to maxTags 802.1Q /
// 802.1ad tags in the frame. With SampleEvery > 1 it then keeps a packet
// only when the kernel's per-packet random number falls below
// 2^32/SampleEvery, i.e. 1 in SampleEvery.
func Filter(spec FilterSpec) ([]bpf.Instruction, error) {
	if len(spec.Ignore) > MaxIgnored {
		return nil, fmt.Errorf("synwatch: filter ignore %d interfaces: at most %d", len(spec.Ignore), MaxIgnored)
	}
	if spec.SampleEvery == 0 {
		return nil, fmt.Errorf("synwatch: filter sample_every 0: want 1 or more")
	}
	var a assembler
	// M[memOut] = 1 for outbound frames.
	if spec.Uplink != 0 {
		a.add(bpf.LoadExtension{Num: bpf.ExtInterfaceIndex})
		a.jumpIf(bpf.JumpEqual, spec.Uplink, "uplink", "")
		for _, i := range spec.Ignore {
			a.jumpIf(bpf.JumpEqual, i, "drop", "")
		}
		a.add(bpf.LoadExtension{Num: bpf.ExtType})
		a.jumpIf(bpf.JumpEqual, packetOutgoing, "dir_in", "dir_out") // to the VM: a reply
	}
	a.label("uplink")
	a.add(bpf.LoadExtension{Num: bpf.ExtType})
	a.jumpIf(bpf.JumpEqual, packetOutgoing, "dir_out", "dir_in")
	a.label("dir_out")
	a.add(bpf.LoadConstant{Dst: bpf.RegA, Val: 1})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: memOut})
	a.jump("l2")
	a.label("dir_in")
	a.add(bpf.LoadConstant{Dst: bpf.RegA, Val: 0})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: memOut})

	a.label("l2")
	// X holds the VLAN tags' length (4 per tag) until the L3 header is
	// parsed, then the L4 header offset minus the 14-byte Ethernet header.
	a.add(bpf.LoadAbsolute{Off: 12, Size: 2})
	a.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 0})
	for i := range maxTags {
		tag := fmt.Sprintf("tag%d", i)
		a.jumpIf(bpf.JumpEqual, 0x8100, tag, "")
		a.jumpIf(bpf.JumpEqual, 0x88a8, tag, "l3")
		a.label(tag)
		a.add(bpf.LoadIndirect{Off: 16, Size: 2}) // the EtherType after this tag
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: memProto})
		a.add(bpf.TXA{})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 4})
		a.add(bpf.TAX{})
		a.add(bpf.LoadScratch{Dst: bpf.RegA, N: memProto})
	}
	a.label("l3")
	a.jumpIf(bpf.JumpEqual, 0x0800, "ipv4", "")
	a.jumpIf(bpf.JumpEqual, 0x86dd, "ipv6", "drop")

	a.label("ipv4")
	a.add(bpf.LoadIndirect{Off: 14 + 6, Size: 2})
	a.jumpIf(bpf.JumpBitsSet, 0x1fff, "drop", "") // not a first fragment: no L4 header
	a.add(bpf.LoadIndirect{Off: 14 + 9, Size: 1})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: memProto})
	a.add(bpf.LoadIndirect{Off: 14, Size: 1})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
	a.add(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.add(bpf.TAX{})
	a.jump("l4")

	// IPv6: walk up to maxExtHeaders extension headers (RFC 8200 §4) to TCP
	// or UDP; a fragment header other than the first fragment's drops.
	a.label("ipv6")
	a.add(bpf.LoadIndirect{Off: 14 + 6, Size: 1})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: memProto})
	a.add(bpf.TXA{})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 40})
	a.add(bpf.TAX{})
	for i := range maxExtHeaders {
		next := fmt.Sprintf("ext%d", i+1)
		generic, frag, ah := fmt.Sprintf("opts%d", i), fmt.Sprintf("frag%d", i), fmt.Sprintf("ah%d", i)
		a.label(fmt.Sprintf("ext%d", i))
		a.add(bpf.LoadScratch{Dst: bpf.RegA, N: memProto})
		a.jumpIf(bpf.JumpEqual, 6, "l4", "")
		a.jumpIf(bpf.JumpEqual, 17, "l4", "")
		a.jumpIf(bpf.JumpEqual, 58, "l4", "")
		a.jumpIf(bpf.JumpEqual, 0, generic, "")  // hop-by-hop options
		a.jumpIf(bpf.JumpEqual, 60, generic, "") // destination options
		a.jumpIf(bpf.JumpEqual, 43, generic, "") // routing
		a.jumpIf(bpf.JumpEqual, 44, frag, "")
		a.jumpIf(bpf.JumpEqual, 51, ah, "data") // ESP, no next header, others: bytes only
		// Hdr Ext Len counts 8-octet units after the first 8.
		a.label(generic)
		a.add(bpf.LoadIndirect{Off: 14, Size: 1})
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: memProto})
		a.add(bpf.LoadIndirect{Off: 14 + 1, Size: 1})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 3})
		a.add(bpf.ALUOpX{Op: bpf.ALUOpAdd})
		a.add(bpf.TAX{})
		a.jump(next)
		// Fragment header: 8 bytes; a non-zero offset carries no L4 header.
		a.label(frag)
		a.add(bpf.LoadIndirect{Off: 14 + 2, Size: 2})
		a.jumpIf(bpf.JumpBitsSet, 0xfff8, "drop", "")
		a.add(bpf.LoadIndirect{Off: 14, Size: 1})
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: memProto})
		a.add(bpf.TXA{})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 8})
		a.add(bpf.TAX{})
		a.jump(next)
		// AH (RFC 4302 §2.2): Payload Len counts 4-octet units minus 2.
		a.label(ah)
		a.add(bpf.LoadIndirect{Off: 14, Size: 1})
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: memProto})
		a.add(bpf.LoadIndirect{Off: 14 + 1, Size: 1})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 2})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
		a.add(bpf.ALUOpX{Op: bpf.ALUOpAdd})
		a.add(bpf.TAX{})
		a.jump(next)
	}
	a.label(fmt.Sprintf("ext%d", maxExtHeaders))

	// The transport header's first 20 bytes must fit in what is returned.
	a.label("l4")
	a.add(bpf.TXA{})
	a.jumpIf(bpf.JumpGreaterThan, Snaplen-14-20, "drop", "")
	a.add(bpf.LoadScratch{Dst: bpf.RegA, N: memProto})
	a.jumpIf(bpf.JumpEqual, 6, "tcp", "")
	a.jumpIf(bpf.JumpEqual, 17, "accept", "")
	a.jumpIf(bpf.JumpEqual, 1, "accept", "")
	a.jumpIf(bpf.JumpEqual, 58, "accept", "data")

	a.label("tcp")
	a.add(bpf.LoadIndirect{Off: 14 + 13, Size: 1})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: tcpFIN | tcpSYN | tcpRST | tcpACK})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: memFlags})
	a.add(bpf.LoadScratch{Dst: bpf.RegA, N: memOut})
	a.jumpIf(bpf.JumpEqual, 1, "", "tcp_in")
	a.add(bpf.LoadScratch{Dst: bpf.RegA, N: memFlags})
	a.jumpIf(bpf.JumpEqual, tcpSYN, "accept", "")
	a.jumpIf(bpf.JumpEqual, tcpRST, "accept", "")        // RST without ACK: see account.Classify
	a.jumpIf(bpf.JumpEqual, tcpRST|tcpACK, "accept", "") // abortive close
	a.jumpIf(bpf.JumpBitsSet, tcpFIN, "accept", "data")  // orderly close
	a.label("tcp_in")
	a.add(bpf.LoadScratch{Dst: bpf.RegA, N: memFlags})
	a.jumpIf(bpf.JumpEqual, tcpSYN|tcpACK, "accept", "data")

	a.label("data")
	a.add(bpf.LoadExtension{Num: bpf.ExtRand})
	a.jumpIf(bpf.JumpGreaterOrEqual, sampleThreshold(DataEvery), "drop", "")

	a.label("accept")
	if spec.SampleEvery > 1 {
		a.add(bpf.LoadExtension{Num: bpf.ExtRand})
		a.jumpIf(bpf.JumpGreaterOrEqual, sampleThreshold(spec.SampleEvery), "drop", "")
	}
	a.add(bpf.RetConstant{Val: Snaplen})
	a.label("drop")
	a.add(bpf.RetConstant{Val: 0})
	return a.resolve()
}

// sampledAsData repeats the filter's choice for a TCP segment with flags
// (masked to FIN|SYN|RST|ACK): true when it passed 1 in DataEvery.
func sampledAsData(flags uint8, out bool) bool {
	if out {
		return !(flags == tcpSYN || flags == tcpRST || flags == tcpRST|tcpACK || flags&tcpFIN != 0)
	}
	return flags != tcpSYN|tcpACK
}

// sampleThreshold is the bound under which a uniform 32-bit random number
// falls with probability 1/every (exact for powers of two).
func sampleThreshold(every uint32) uint32 {
	return uint32((math.MaxUint32 + 1) / uint64(every))
}

// assembler builds a classic BPF program with symbolic jump targets; "" as a
// target means the next instruction.
type assembler struct {
	ins    []bpf.Instruction
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at          int
	onTrue, els string
	always      bool
}

func (a *assembler) add(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *assembler) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

func (a *assembler) jump(to string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), onTrue: to, always: true})
	a.add(bpf.Jump{})
}

func (a *assembler) jumpIf(cond bpf.JumpTest, val uint32, onTrue, els string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), onTrue: onTrue, els: els})
	a.add(bpf.JumpIf{Cond: cond, Val: val})
}

func (a *assembler) skip(from int, to string) (uint32, error) {
	if to == "" {
		return 0, nil
	}
	at, ok := a.labels[to]
	if !ok {
		return 0, fmt.Errorf("synwatch: filter label %q undefined", to)
	}
	if at <= from {
		return 0, fmt.Errorf("synwatch: filter label %q jumps backwards", to)
	}
	return uint32(at - from - 1), nil
}

func (a *assembler) resolve() ([]bpf.Instruction, error) {
	for _, f := range a.fixups {
		t, err := a.skip(f.at, f.onTrue)
		if err != nil {
			return nil, err
		}
		if f.always {
			a.ins[f.at] = bpf.Jump{Skip: t}
			continue
		}
		e, err := a.skip(f.at, f.els)
		if err != nil {
			return nil, err
		}
		if t > math.MaxUint8 || e > math.MaxUint8 {
			return nil, fmt.Errorf("synwatch: filter jump at %d too long", f.at)
		}
		j := a.ins[f.at].(bpf.JumpIf)
		j.SkipTrue, j.SkipFalse = uint8(t), uint8(e)
		a.ins[f.at] = j
	}
	return a.ins, nil
}
