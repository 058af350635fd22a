package shaper

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/bpf"
)

// The classifier is one classic BPF program, attached with cls_bpf to the
// hook a Plan names. It parses each frame the way the kernel's own stack
// would and returns 0 (no match: the packet continues unshaped, and any
// later filter on the hook still sees it) or 0xffffffff (match: the
// filter's classid and its mirred redirect to the shaping device apply).
// The parse:
//   - Ethernet, then up to two 802.1Q/802.1ad tags carried in the frame (a
//     tag the NIC holds out of band is not in the frame, so the inner
//     EtherType is read as is); devices without a link-layer header start
//     at the IP version nibble;
//   - IPv4 with its header length (IHL), so IP options move the transport
//     header as they do in the kernel;
//   - IPv6 with up to maxIPv6ExtHeaders extension headers walked (hop-by-hop,
//     routing, destination options, fragment, AH);
//   - fragments: a non-first fragment carries no ports, so it matches a
//     throttle rule by protocol and source alone (every fragment of a
//     throttled protocol from a throttled source is held while the throttle
//     is active) and never matches a whitelist rule that needs a port; a
//     first fragment is classified by its ports like any packet;
//   - an IPv6 chain longer than maxIPv6ExtHeaders counts as a non-first
//     fragment of an unknown protocol, which every throttle rule holds.
//
// Classic BPF, not eBPF, so that `plan` prints a tc command that loads the
// same program (`bpf bytecode`), and `tc filter show` prints it back.
const maxIPv6ExtHeaders = 8

// Scratch memory slots of the program.
const (
	memL3    = 0 // offset of the IP header
	memL4    = 1 // offset of the transport header (IPv6: of the header being walked)
	memProto = 2 // transport protocol (IPv6: next header being walked); protoUnknown after an over-long chain
	memFrag  = 3 // 1 for a non-first fragment
	memTmp   = 4
)

// protoUnknown marks an IPv6 packet whose transport protocol was not reached.
const protoUnknown = 0x100

// maxProgramLen is the kernel's limit on classic BPF programs (BPF_MAXINSNS).
const maxProgramLen = 4096

// LinkType says whether frames on an interface start with an Ethernet header.
type LinkType int

const (
	// LinkEthernet frames start with a 14-byte Ethernet header (veth, tap, bridge, NICs).
	LinkEthernet LinkType = iota
	// LinkRawIP frames start with the IP header (tun, WireGuard, ip tunnels).
	LinkRawIP
)

// Rule is one line of the classifier, tried in order: the first rule whose
// every condition holds decides. Empty condition lists hold for any packet.
type Rule struct {
	Purpose   string // "whitelist" (the packet passes unshaped) or "throttle"
	IPv6      bool
	Protocols []uint8 // IP protocol numbers
	SrcPorts  []PortRange
	DstPorts  []PortRange
	ICMPTypes []uint8 // the first byte of the ICMP or ICMPv6 header
	Src, Dst  []netip.Prefix
}

// Throttle reports whether a match sends the packet to the throttled class.
func (r Rule) Throttle() bool { return r.Purpose == "throttle" }

// String renders r for `plan`, e.g. "throttle ipv4 proto 6,17 dport 443 src 10.0.0.5/32".
func (r Rule) String() string {
	fam := "ipv4"
	if r.IPv6 {
		fam = "ipv6"
	}
	parts := []string{r.Purpose, fam}
	if len(r.Protocols) > 0 {
		ps := make([]string, len(r.Protocols))
		for i, p := range r.Protocols {
			ps[i] = fmt.Sprint(p)
		}
		parts = append(parts, "proto "+strings.Join(ps, ","))
	}
	for _, c := range []struct {
		name string
		list []PortRange
	}{{"sport", r.SrcPorts}, {"dport", r.DstPorts}} {
		if len(c.list) > 0 {
			parts = append(parts, c.name+" "+joinStrings(c.list))
		}
	}
	if len(r.ICMPTypes) > 0 {
		ts := make([]string, len(r.ICMPTypes))
		for i, t := range r.ICMPTypes {
			ts[i] = fmt.Sprint(t)
		}
		parts = append(parts, "type "+strings.Join(ts, ","))
	}
	for _, c := range []struct {
		name string
		list []netip.Prefix
	}{{"src", r.Src}, {"dst", r.Dst}} {
		if len(c.list) > 0 {
			parts = append(parts, c.name+" "+joinStrings(c.list))
		}
	}
	return strings.Join(parts, " ")
}

func joinStrings[T fmt.Stringer](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

// program is a classic BPF program under construction: instructions with
// symbolic forward jumps, resolved by assemble.
type program struct {
	ins    []bpf.Instruction
	labels map[string]int
	jumps  map[int]string // index of a placeholder Jump → its label
	n      int            // for fresh labels
}

func (p *program) emit(ins ...bpf.Instruction) { p.ins = append(p.ins, ins...) }

func (p *program) label(name string) { p.labels[name] = len(p.ins) }

func (p *program) fresh(prefix string) string {
	p.n++
	return fmt.Sprintf("%s%d", prefix, p.n)
}

// jump goes to label unconditionally.
func (p *program) jump(label string) {
	p.jumps[len(p.ins)] = label
	p.emit(bpf.Jump{})
}

// jumpIf goes to label when A <cond> val holds: the conditional jump only
// skips over an unconditional one, so a label may lie any distance ahead.
func (p *program) jumpIf(cond bpf.JumpTest, val uint32, label string) {
	p.emit(bpf.JumpIf{Cond: cond, Val: val, SkipTrue: 0, SkipFalse: 1})
	p.jump(label)
}

func (p *program) assemble() ([]bpf.RawInstruction, error) {
	for i, l := range p.jumps {
		t, ok := p.labels[l]
		if !ok || t <= i {
			return nil, fmt.Errorf("shaper: classifier: jump to %q unresolved", l)
		}
		p.ins[i] = bpf.Jump{Skip: uint32(t - i - 1)}
	}
	if len(p.ins) > maxProgramLen {
		return nil, fmt.Errorf("shaper: classifier of %d instructions: above the kernel's %d; name fewer sources, ports or whitelist CIDRs",
			len(p.ins), maxProgramLen)
	}
	return bpf.Assemble(p.ins)
}

func ldScratch(n int) bpf.Instruction  { return bpf.LoadScratch{Dst: bpf.RegA, N: n} }
func ldxScratch(n int) bpf.Instruction { return bpf.LoadScratch{Dst: bpf.RegX, N: n} }
func stScratch(n int) bpf.Instruction  { return bpf.StoreScratch{Src: bpf.RegA, N: n} }
func ldA(k uint32) bpf.Instruction     { return bpf.LoadConstant{Dst: bpf.RegA, Val: k} }
func ldInd(off uint32, size int) bpf.Instruction {
	return bpf.LoadIndirect{Off: off, Size: size}
}
func alu(op bpf.ALUOp, k uint32) bpf.Instruction { return bpf.ALUOpConstant{Op: op, Val: k} }

const matchAll = 0xffffffff

// compileClassifier builds the program that applies rules to frames of link.
func compileClassifier(link LinkType, rules []Rule) ([]bpf.RawInstruction, error) {
	p := &program{labels: map[string]int{}, jumps: map[int]string{}}
	if link == LinkRawIP {
		p.emit(ldA(0), stScratch(memL3), bpf.LoadAbsolute{Off: 0, Size: 1}, alu(bpf.ALUOpShiftRight, 4))
		p.jumpIf(bpf.JumpEqual, 4, "ipv4")
		p.jumpIf(bpf.JumpEqual, 6, "ipv6")
		p.emit(bpf.RetConstant{Val: 0})
	} else {
		// X walks the EtherType field through up to two VLAN tags.
		p.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: 12})
		for range 2 {
			tag := p.fresh("tag")
			p.emit(ldInd(0, 2))
			p.jumpIf(bpf.JumpEqual, 0x8100, tag)
			p.jumpIf(bpf.JumpEqual, 0x88a8, tag)
			p.jump("ethertype")
			p.label(tag)
			p.emit(bpf.TXA{}, alu(bpf.ALUOpAdd, 4), bpf.TAX{})
		}
		p.emit(ldInd(0, 2))
		p.label("ethertype")
		p.emit(stScratch(memTmp), bpf.TXA{}, alu(bpf.ALUOpAdd, 2), stScratch(memL3), ldScratch(memTmp))
		p.jumpIf(bpf.JumpEqual, 0x0800, "ipv4")
		p.jumpIf(bpf.JumpEqual, 0x86dd, "ipv6")
		p.emit(bpf.RetConstant{Val: 0})
	}

	p.label("ipv4")
	p.emit(ldxScratch(memL3), ldInd(0, 1), alu(bpf.ALUOpAnd, 0x0f), alu(bpf.ALUOpShiftLeft, 2))
	p.jumpIf(bpf.JumpLessThan, 20, "pass")
	p.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd}, stScratch(memL4), ldInd(9, 1), stScratch(memProto),
		ldA(0), stScratch(memFrag), ldInd(6, 2))
	p.jumpIf(bpf.JumpBitsNotSet, 0x1fff, "rules4")
	p.emit(ldA(1), stScratch(memFrag))
	p.jump("rules4")

	p.label("ipv6")
	p.emit(ldxScratch(memL3), ldInd(6, 1), stScratch(memProto), ldA(0), stScratch(memFrag),
		bpf.TXA{}, alu(bpf.ALUOpAdd, 40), stScratch(memL4))
	for range maxIPv6ExtHeaders {
		next, ext, ah, frag := p.fresh("next"), p.fresh("ext"), p.fresh("ah"), p.fresh("frag")
		p.emit(ldScratch(memProto))
		for _, h := range []uint32{0, 43, 60} { // hop-by-hop, routing, destination options
			p.jumpIf(bpf.JumpEqual, h, ext)
		}
		p.jumpIf(bpf.JumpEqual, 44, frag)
		p.jumpIf(bpf.JumpEqual, 51, ah)
		p.jump("rules6")
		// Length in 8-octet units, not counting the first 8 (RFC 8200 §4.3).
		p.label(ext)
		p.emit(ldxScratch(memL4), ldInd(1, 1), alu(bpf.ALUOpAdd, 1), alu(bpf.ALUOpShiftLeft, 3))
		p.jump(next)
		// Length in 4-octet units, minus 2 (RFC 4302 §2.2).
		p.label(ah)
		p.emit(ldxScratch(memL4), ldInd(1, 1), alu(bpf.ALUOpAdd, 2), alu(bpf.ALUOpShiftLeft, 2))
		p.jump(next)
		p.label(frag)
		p.emit(ldxScratch(memL4), ldInd(2, 2))
		first := p.fresh("first")
		p.jumpIf(bpf.JumpBitsNotSet, 0xfff8, first)
		p.emit(ldInd(0, 1), stScratch(memProto), ldA(1), stScratch(memFrag))
		p.jump("rules6")
		p.label(first)
		p.emit(ldA(8))
		p.label(next)
		// A = length of the header at X; move on to the next one.
		p.emit(stScratch(memTmp), ldInd(0, 1), stScratch(memProto), ldScratch(memTmp),
			bpf.ALUOpX{Op: bpf.ALUOpAdd}, stScratch(memL4))
	}
	p.emit(ldScratch(memProto))
	for _, h := range []uint32{0, 43, 60, 44, 51} {
		p.jumpIf(bpf.JumpEqual, h, "toolong")
	}
	p.jump("rules6")
	p.label("toolong")
	p.emit(ldA(protoUnknown), stScratch(memProto), ldA(1), stScratch(memFrag))
	p.jump("rules6")

	for _, v6 := range []bool{false, true} {
		if v6 {
			p.label("rules6")
		} else {
			p.label("rules4")
		}
		for _, r := range rules {
			if r.IPv6 == v6 {
				compileRule(p, r)
			}
		}
		p.jump("pass")
	}
	p.label("pass")
	p.emit(bpf.RetConstant{Val: 0})
	return p.assemble()
}

// compileRule emits the checks of one rule: on a failed check it jumps past
// the rule, else it returns the rule's verdict.
func compileRule(p *program, r Rule) {
	next := p.fresh("rule")
	verdict := uint32(0)
	if r.Throttle() {
		verdict = matchAll
	}
	if len(r.Protocols) > 0 {
		ok := p.fresh("proto")
		p.emit(ldScratch(memProto))
		for _, proto := range r.Protocols {
			p.jumpIf(bpf.JumpEqual, uint32(proto), ok)
		}
		if r.Throttle() {
			p.jumpIf(bpf.JumpEqual, protoUnknown, ok)
		}
		p.jump(next)
		p.label(ok)
	}
	if len(r.SrcPorts)+len(r.DstPorts) > 0 {
		ok := p.fresh("ports")
		p.emit(ldScratch(memFrag))
		if r.Throttle() {
			p.jumpIf(bpf.JumpEqual, 1, ok) // a non-first fragment of a throttled protocol
		} else {
			p.jumpIf(bpf.JumpEqual, 1, next) // a whitelist port cannot be seen
		}
		for _, c := range []struct {
			off  uint32
			list []PortRange
		}{{0, r.SrcPorts}, {2, r.DstPorts}} {
			if len(c.list) == 0 {
				continue
			}
			hit := p.fresh("port")
			p.emit(ldxScratch(memL4), ldInd(c.off, 2))
			for _, pr := range c.list {
				if pr.First == pr.Last {
					p.jumpIf(bpf.JumpEqual, uint32(pr.First), hit)
					continue
				}
				miss := p.fresh("range")
				p.jumpIf(bpf.JumpLessThan, uint32(pr.First), miss)
				p.jumpIf(bpf.JumpLessOrEqual, uint32(pr.Last), hit)
				p.label(miss)
			}
			p.jump(next)
			p.label(hit)
		}
		p.label(ok)
	}
	if len(r.ICMPTypes) > 0 {
		ok := p.fresh("type")
		p.emit(ldScratch(memFrag))
		p.jumpIf(bpf.JumpEqual, 1, next) // a fragment's type cannot be seen
		p.emit(ldxScratch(memL4), ldInd(0, 1))
		for _, typ := range r.ICMPTypes {
			p.jumpIf(bpf.JumpEqual, uint32(typ), ok)
		}
		p.jump(next)
		p.label(ok)
	}
	for _, c := range []struct {
		dst  bool
		list []netip.Prefix
	}{{false, r.Src}, {true, r.Dst}} {
		if len(c.list) == 0 {
			continue
		}
		hit := p.fresh("addr")
		for _, pfx := range c.list {
			miss := p.fresh("pfx")
			off := addrOffset(pfx.Addr().Is6(), c.dst)
			addr := pfx.Masked().Addr().AsSlice()
			p.emit(ldxScratch(memL3))
			for i := 0; i < pfx.Bits(); i += 32 {
				mask := uint32(0xffffffff)
				if rest := pfx.Bits() - i; rest < 32 {
					mask <<= 32 - rest
				}
				p.emit(ldInd(off+uint32(i/8), 4))
				if mask != 0xffffffff {
					p.emit(alu(bpf.ALUOpAnd, mask))
				}
				p.jumpIf(bpf.JumpNotEqual, binary.BigEndian.Uint32(addr[i/8:]), miss)
			}
			p.jump(hit)
			p.label(miss)
		}
		p.jump(next)
		p.label(hit)
	}
	p.emit(bpf.RetConstant{Val: verdict})
	p.label(next)
}

// addrOffset is where the source or destination address starts in the IP header.
func addrOffset(v6, dst bool) uint32 {
	switch {
	case v6 && dst:
		return 24
	case v6:
		return 8
	case dst:
		return 16
	}
	return 12
}

// Bytecode renders a program the way tc's `bpf bytecode` takes it and
// `tc filter show` prints it: "N,code jt jf k,…".
func Bytecode(prog []bpf.RawInstruction) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", len(prog))
	for _, ins := range prog {
		fmt.Fprintf(&b, ",%d %d %d %d", ins.Op, ins.Jt, ins.Jf, ins.K)
	}
	return b.String()
}

// programBytes encodes a program as the array of struct sock_filter the
// kernel takes in TCA_BPF_OPS.
func programBytes(prog []bpf.RawInstruction) []byte {
	b := make([]byte, 0, 8*len(prog))
	for _, ins := range prog {
		b = binary.NativeEndian.AppendUint16(b, ins.Op)
		b = append(b, ins.Jt, ins.Jf)
		b = binary.NativeEndian.AppendUint32(b, ins.K)
	}
	return b
}
