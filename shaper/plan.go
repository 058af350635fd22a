package shaper

import (
	"fmt"
	"net/netip"
	"slices"
)

// Handle is a tc handle or class id (major:minor).
type Handle uint32

// HandleRoot is the parent of a root qdisc.
const HandleRoot Handle = 0xffffffff

// The handles and class ids of the layout; they are a contract that tests
// and operators read back with tc.
const (
	RootHandle     Handle = 0xe9 << 16    // e9:   root htb, marks the root as ours
	ParentClass    Handle = 0xe9<<16 | 1  // e9:1  parent class
	ThrottledClass Handle = 0xe9<<16 | 16 // e9:10 throttled class
	OtherClass     Handle = 0xe9<<16 | 32 // e9:20 "other", the htb default
	ThrottledLeaf  Handle = 0xe910 << 16  // e910: leaf qdisc of e9:10
	OtherLeaf      Handle = 0xe920 << 16  // e920: leaf qdisc of e9:20
)

// Filter priorities of band 0; band 1 adds bandOffset. Each priority holds
// one protocol, as the kernel requires.
const (
	PrioWhitelistIPv4 uint16 = 10
	PrioWhitelistIPv6 uint16 = 11
	PrioThrottleIPv4  uint16 = 12
	PrioThrottleIPv6  uint16 = 13
	bandOffset        uint16 = 10
)

// unknownLinkRate is the ceiling of virtual links that report no speed: it
// never binds (a 10gbit ceiling on a veth halves unthrottled throughput).
const unknownLinkRate uint64 = 100_000_000_000

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

// Features are the optional kernel qdiscs a Plan may use; HTB and u32 are required.
type Features struct{ SFQ, FQCodel bool }

// Qdisc is one queueing discipline of a Plan.
type Qdisc struct {
	Parent       Handle // HandleRoot for the root
	Handle       Handle
	Kind         string // "htb", "sfq", "fq_codel" or "pfifo"
	DefaultClass Handle // htb: where unclassified traffic goes
	Perturb      int32  // sfq: seconds between hash perturbations
	Limit        uint32 // pfifo, fq_codel: queue limit in packets
}

// Class is one htb class of a Plan.
type Class struct {
	Name          string // "parent", "throttled" or "other"
	Parent        Handle
	ClassID       Handle
	Rate, Ceil    uint64 // bits/s
	Burst, Cburst uint32 // bytes
	Quantum       uint32 // bytes
}

// Filter is one u32 filter of a Plan: all Matches must hold for FlowID.
type Filter struct {
	Purpose  string // "whitelist" or "throttle"
	Protocol string // "ip" or "ipv6"
	Prio     uint16
	Matches  []Match
	FlowID   Handle
}

// Match is one u32 match of a Filter.
type Match struct {
	Field  string       // "protocol", "sport", "dport", "src" or "dst"
	Value  uint16       // IP protocol number or port
	Prefix netip.Prefix // src, dst
}

// Plan is the ordered set of tc objects a Spec needs: Root, then Classes,
// Leaves and Filters in installation order.
type Plan struct {
	Spec     Spec
	Root     Qdisc
	Classes  []Class
	Leaves   []Qdisc
	Filters  []Filter
	Warnings []string
}

// NewPlan validates s and computes the objects that implement it with the
// leaf qdisc f allows: sfq, else fq_codel, else pfifo with a warning.
func NewPlan(s Spec, f Features) (Plan, error) {
	if err := s.Validate(); err != nil {
		return Plan{}, err
	}
	link := s.LinkRate
	if link == 0 {
		link = unknownLinkRate
	}
	p := Plan{
		Spec: s,
		Root: Qdisc{Parent: HandleRoot, Handle: RootHandle, Kind: "htb", DefaultClass: OtherClass},
		Classes: []Class{
			newClass("parent", RootHandle, ParentClass, link),
			newClass("throttled", ParentClass, ThrottledClass, s.Rate),
			newClass("other", ParentClass, OtherClass, link),
		},
	}
	for _, l := range []struct {
		parent, handle Handle
		rate           uint64
	}{{ThrottledClass, ThrottledLeaf, s.Rate}, {OtherClass, OtherLeaf, link}} {
		q := Qdisc{Parent: l.parent, Handle: l.handle, Kind: "pfifo", Limit: fifoLimit(l.rate)}
		switch {
		case f.SFQ:
			q.Kind, q.Limit, q.Perturb = "sfq", 0, 10
		case f.FQCodel:
			q.Kind, q.Limit = "fq_codel", 10240
		}
		p.Leaves = append(p.Leaves, q)
	}
	if !f.SFQ && !f.FQCodel {
		p.Warnings = append(p.Warnings, "sch_sfq and fq_codel missing: pfifo leaves")
	}
	p.Filters = append(whitelistFilters(s), throttleFilters(s)...)
	return p, nil
}

// fifoLimit bounds a pfifo leaf to about 200 ms of full-size packets at
// rate (16..1000 packets): a throttled class then keeps a short queue, so
// the control packets of a throttled connection are not stuck behind
// seconds of data.
func fifoLimit(rate uint64) uint32 {
	return uint32(min(max(rate/8/5/1500, 16), 1000))
}

func newClass(name string, parent, id Handle, rate uint64) Class {
	bytes := rate / 8
	// tc's defaults: burst = rate/HZ + mtu with HZ 1e9 and mtu 1600, and the
	// kernel's quantum rule (rate/r2q clamped to 1000..200000) made explicit.
	burst := uint32(min(bytes/1_000_000_000+1600, 1<<31))
	quantum := uint32(min(max(bytes/10, 1000), 200000))
	return Class{Name: name, Parent: parent, ClassID: id, Rate: rate, Ceil: rate, Burst: burst, Cburst: burst, Quantum: quantum}
}

func whitelistFilters(s Spec) []Filter {
	ports := []uint16{SSHPort}
	for _, p := range s.WhitelistPorts {
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	var out []Filter
	for _, fam := range families() {
		for _, proto := range []string{"tcp", "udp"} {
			num, _ := ipProtocol(proto)
			for _, port := range ports {
				for _, dir := range []string{"sport", "dport"} {
					out = append(out, Filter{Purpose: "whitelist", Protocol: fam.protocol, Prio: fam.whitelistPrio,
						Matches: []Match{{Field: "protocol", Value: uint16(num)}, {Field: dir, Value: port}}, FlowID: OtherClass})
				}
			}
		}
		for _, c := range s.WhitelistCIDRs {
			if c.Addr().Is6() != fam.v6 {
				continue
			}
			for _, dir := range []string{"src", "dst"} {
				out = append(out, Filter{Purpose: "whitelist", Protocol: fam.protocol, Prio: fam.whitelistPrio,
					Matches: []Match{{Field: dir, Prefix: c.Masked()}}, FlowID: OtherClass})
			}
		}
	}
	return out
}

func throttleFilters(s Spec) []Filter {
	var out []Filter
	for _, fam := range families() {
		var sources []netip.Prefix
		for _, src := range s.Sources {
			if src.Addr().Is6() == fam.v6 {
				sources = append(sources, src.Masked())
			}
		}
		if s.Scope() == ScopeSource && len(sources) == 0 {
			continue
		}
		for _, proto := range s.Protocols {
			num, _ := ipProtocol(proto)
			for _, port := range s.Ports {
				base := []Match{{Field: "protocol", Value: uint16(num)}, {Field: "dport", Value: port}}
				if s.Scope() == ScopeNode {
					out = append(out, Filter{Purpose: "throttle", Protocol: fam.protocol, Prio: fam.throttlePrio, Matches: base, FlowID: ThrottledClass})
					continue
				}
				for _, src := range sources {
					m := append(slices.Clip(base), Match{Field: "src", Prefix: src})
					out = append(out, Filter{Purpose: "throttle", Protocol: fam.protocol, Prio: fam.throttlePrio, Matches: m, FlowID: ThrottledClass})
				}
			}
		}
	}
	return out
}

// family is one IP version's filter protocol and priorities.
type family struct {
	protocol                    string
	v6                          bool
	whitelistPrio, throttlePrio uint16
}

func families() [2]family {
	return [2]family{
		{protocol: "ip", whitelistPrio: PrioWhitelistIPv4, throttlePrio: PrioThrottleIPv4},
		{protocol: "ipv6", v6: true, whitelistPrio: PrioWhitelistIPv6, throttlePrio: PrioThrottleIPv6},
	}
}
