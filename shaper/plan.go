package shaper

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"

	"golang.org/x/net/bpf"
)

// Handle is a tc handle or class id (major:minor).
type Handle uint32

// HandleRoot is the parent of a root qdisc.
const HandleRoot Handle = 0xffffffff

// The handles of the layout on the shaping device; they are a contract that
// tests and operators read back with tc.
const (
	RootHandle     Handle = 0xe9 << 16    // e9:   root htb of the shaping device
	ThrottledClass Handle = 0xe9<<16 | 16 // e9:10 throttled class, the htb default
	ThrottledLeaf  Handle = 0xe910 << 16  // e910: its leaf qdisc
)

// The classifier filter on the served interface's clsact hook. Prio 0xe9
// runs before filters added without a prio (iproute2 starts at 49152).
const (
	FilterPrio   uint16 = 0xe9
	FilterHandle uint32 = 0xe9
)

// Hook is the clsact hook the classifier sits on.
type Hook string

const (
	// HookEgress sees what the node sends out of an uplink.
	HookEgress Hook = "egress"
	// HookIngress sees what a VM sends into its bridge port.
	HookIngress Hook = "ingress"
)

// ShapingAlias marks a shaping device as ours: its interface alias is this
// prefix followed by the name of the interface it serves, and by
// ClsactMark when Apply added the clsact qdisc of that interface, which
// Remove then deletes once nothing else is on it. The device is created
// before the clsact qdisc and deleted after it, so the mark outlives a crash
// at any point.
const (
	ShapingAlias = "egressguard shaping device of "
	ClsactMark   = "; clsact added"
)

// shapingAlias is the alias of the shaping device of iface.
func shapingAlias(iface string, addedClsact bool) string {
	if addedClsact {
		return ShapingAlias + iface + ClsactMark
	}
	return ShapingAlias + iface
}

// ShapingDevice is the name of the ifb device that shapes iface: "eg-" and
// the interface name when that fits in 15 bytes, else "eg-", the first 7
// bytes of the name, "-" and 4 hex digits of its FNV-1a hash. Two long names
// that collide are told apart by the device's alias, and the second is refused.
func ShapingDevice(iface string) string {
	if len(iface) <= 12 {
		return "eg-" + iface
	}
	h := fnv.New32a()
	h.Write([]byte(iface))
	return fmt.Sprintf("eg-%s-%04x", iface[:7], h.Sum32()&0xffff)
}

// String formats a handle the way tc prints it: "e9:", "e9:10", "root".
func (h Handle) String() string {
	if h == HandleRoot {
		return "root"
	}
	if h&0xffff == 0 {
		return fmt.Sprintf("%x:", uint32(h)>>16)
	}
	return fmt.Sprintf("%x:%x", uint32(h)>>16, uint32(h)&0xffff)
}

// Features are the optional kernel qdiscs a Plan may use; htb, clsact,
// cls_bpf, mirred and ifb are required.
type Features struct{ SFQ, FQCodel bool }

// Qdisc is one queueing discipline of a Plan.
type Qdisc struct {
	Parent       Handle // HandleRoot for the root
	Handle       Handle
	Kind         string // "htb", "sfq", "fq_codel" or "bfifo"
	DefaultClass Handle // htb: where unclassified traffic goes
	Perturb      int32  // sfq: seconds between hash perturbations
	Limit        uint32 // sfq, fq_codel: packets; bfifo: bytes
}

// Class is the htb class of a Plan.
type Class struct {
	Parent, ClassID Handle
	Rate, Ceil      uint64 // bits/s
	Burst, Cburst   uint32 // bytes
	Quantum         uint32 // bytes
}

// Plan is what a Spec needs, computed without touching the kernel: the
// shaping device with its htb root, throttled class and leaf, and the
// classifier on the served interface's clsact hook that redirects the
// matched packets there.
type Plan struct {
	Spec     Spec
	Device   string // the ifb shaping device
	Hook     Hook
	Link     LinkType
	Root     Qdisc
	Class    Class
	Leaf     Qdisc
	Rules    []Rule
	Program  []bpf.RawInstruction
	Warnings []string
}

// queueDelay is the longest a throttled packet should wait in the leaf: the
// leaf's bytes are rate × queueDelay, so new connections to a throttled
// port are not stuck behind seconds of data.
const queueDelaySeconds = 0.1

// minLeafBytes keeps room for two full-size Ethernet frames at any rate.
const minLeafBytes = 2 * 1514

// NewPlan validates s and computes the objects that implement it with the
// leaf f allows: sfq, else fq_codel, else bfifo with a warning. The
// classifier is compiled for Ethernet frames; Apply recompiles it (ForLink)
// for an interface without a link-layer header.
func NewPlan(s Spec, f Features) (Plan, error) {
	if err := s.Validate(); err != nil {
		return Plan{}, err
	}
	p := Plan{
		Spec:   s,
		Device: ShapingDevice(s.Interface),
		Hook:   HookEgress,
		Link:   LinkEthernet,
		Root:   Qdisc{Parent: HandleRoot, Handle: RootHandle, Kind: "htb", DefaultClass: ThrottledClass},
		Class:  newClass(RootHandle, ThrottledClass, s.Rate),
		Leaf:   newLeaf(s.Rate, f),
	}
	if s.Scope == ScopePort {
		p.Hook = HookIngress
	}
	if p.Leaf.Kind == "bfifo" {
		p.Warnings = append(p.Warnings, "sch_sfq and fq_codel missing: bfifo leaf")
	}
	p.Rules = append(whitelistRules(s), throttleRules(s)...)
	return p.ForLink(LinkEthernet)
}

// newLeaf sizes the throttled class's leaf in bytes: rate × 100 ms, at
// least two full frames. bfifo counts the bytes of each skb, GSO included;
// sfq and fq_codel count packets, so their limit is those bytes in
// full-size frames (fq_codel's CoDel keeps the standing delay near 5 ms on
// top).
func newLeaf(rate uint64, f Features) Qdisc {
	bytes := uint32(min(max(float64(rate)/8*queueDelaySeconds, minLeafBytes), 1<<30))
	q := Qdisc{Parent: ThrottledClass, Handle: ThrottledLeaf, Kind: "bfifo", Limit: bytes}
	packets := max(bytes/1514, 2)
	switch {
	case f.SFQ:
		q.Kind, q.Limit, q.Perturb = "sfq", packets, 10
	case f.FQCodel:
		q.Kind, q.Limit = "fq_codel", packets
	}
	return q
}

func newClass(parent, id Handle, rate uint64) Class {
	bytes := rate / 8
	// tc's defaults: burst = rate/HZ + mtu with HZ 1e9 and mtu 1600, and the
	// kernel's quantum rule (rate/r2q clamped to 1000..200000) made explicit.
	burst := uint32(min(bytes/1_000_000_000+1600, 1<<31))
	quantum := uint32(min(max(bytes/10, 1000), 200000))
	return Class{Parent: parent, ClassID: id, Rate: rate, Ceil: rate, Burst: burst, Cburst: burst, Quantum: quantum}
}

// IP protocol numbers the rules use.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

func whitelistRules(s Spec) []Rule {
	ports := []uint16{SSHPort}
	for _, p := range s.WhitelistPorts {
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	tcpUDP := []uint8{protoTCP, protoUDP}
	var out []Rule
	for _, v6 := range []bool{false, true} {
		out = append(out,
			Rule{Purpose: "whitelist", IPv6: v6, Protocols: tcpUDP, DstPorts: Ports(ports...)},
			Rule{Purpose: "whitelist", IPv6: v6, Protocols: tcpUDP, SrcPorts: Ports(ports...)})
		if v6 && throttlesICMP(s) {
			// Neighbour and router discovery (RFC 4861) are what IPv6 has for
			// ARP; a throttle of ICMP must not slow the link's own resolution.
			out = append(out, Rule{Purpose: "whitelist", IPv6: true, Protocols: []uint8{protoICMPv6}, ICMPTypes: ndpTypes})
		}
		if cidrs := family(s.WhitelistCIDRs, v6); len(cidrs) > 0 {
			out = append(out, Rule{Purpose: "whitelist", IPv6: v6, Src: cidrs}, Rule{Purpose: "whitelist", IPv6: v6, Dst: cidrs})
		}
		var resolvers []netip.Prefix
		for _, a := range s.Resolvers {
			if a.Is6() == v6 && !a.IsLoopback() {
				resolvers = append(resolvers, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		if len(resolvers) > 0 {
			out = append(out,
				Rule{Purpose: "whitelist", IPv6: v6, Protocols: tcpUDP, DstPorts: Ports(DNSPort), Dst: resolvers},
				Rule{Purpose: "whitelist", IPv6: v6, Protocols: tcpUDP, SrcPorts: Ports(DNSPort), Src: resolvers})
		}
	}
	return out
}

// ndpTypes are the ICMPv6 types of Neighbor Discovery: router solicitation
// and advertisement, neighbour solicitation and advertisement, redirect
// (RFC 4861 §4).
var ndpTypes = []uint8{133, 134, 135, 136, 137}

// throttlesICMP reports whether s's throttle rules can match ICMPv6.
func throttlesICMP(s Spec) bool {
	return (len(s.Protocols) == 0 && len(s.Ports) == 0) || slices.Contains(s.Protocols, "icmp")
}

func throttleRules(s Spec) []Rule {
	var out []Rule
	for _, v6 := range []bool{false, true} {
		sources := family(s.Sources, v6)
		if s.Scope == ScopeSource && len(sources) == 0 {
			continue
		}
		var withPorts, withoutPorts []uint8
		anyProto := len(s.Protocols) == 0
		for _, name := range s.Protocols {
			switch {
			case name == "icmp" && v6:
				withoutPorts = append(withoutPorts, protoICMPv6)
			case name == "icmp":
				withoutPorts = append(withoutPorts, protoICMP)
			case name == "tcp":
				withPorts = append(withPorts, protoTCP)
			case name == "udp":
				withPorts = append(withPorts, protoUDP)
			}
		}
		if len(s.Ports) == 0 {
			// No port condition: one rule over every protocol named (or any).
			out = append(out, Rule{Purpose: "throttle", IPv6: v6, Protocols: append(withPorts, withoutPorts...), Src: sources})
			continue
		}
		if anyProto {
			withPorts = []uint8{protoTCP, protoUDP}
		}
		out = append(out, Rule{Purpose: "throttle", IPv6: v6, Protocols: withPorts, DstPorts: s.Ports, Src: sources})
		if len(withoutPorts) > 0 {
			out = append(out, Rule{Purpose: "throttle", IPv6: v6, Protocols: withoutPorts, Src: sources})
		}
	}
	return out
}

// family returns the prefixes of one IP version, masked.
func family(ps []netip.Prefix, v6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is6() == v6 {
			out = append(out, p.Masked())
		}
	}
	return out
}

// ForLink returns p with its classifier compiled for frames of link.
func (p Plan) ForLink(link LinkType) (Plan, error) {
	prog, err := compileClassifier(link, p.Rules)
	if err != nil {
		return Plan{}, err
	}
	p.Link, p.Program = link, prog
	return p, nil
}
