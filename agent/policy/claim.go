package policy

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/egressguard/egressguard/shaper"
)

// claim is what one owner asks of an interface's mitigation.
type claim struct {
	owner   string
	reason  Reason
	scope   shaper.Scope   // shaper.ScopeSource, shaper.ScopeNode or shaper.ScopePort
	sources []netip.Prefix // sorted, unique; empty unless shaper.ScopeSource
	// protocols are "tcp", "udp", "icmp", sorted, unique; empty = any IP protocol.
	protocols []string
	ports     []shaper.PortRange // destination ports of tcp and udp, sorted, unique; empty = any
	rate      uint64             // bits per second; 0 = throttle.rate
	expires   time.Time
}

// mitigation is an interface's claims, oldest owner first.
type mitigation struct {
	iface  string
	since  time.Time
	claims []claim
}

// view merges the claims into the Mitigation the kernel should hold: the
// widest scope (port, then node, then source: a port claim covers all the VM
// sends), every source, the union of the protocols and of the ports (any
// protocol or any port if one claim asks for any), the lowest explicit rate.
// Ports come only from claims that throttle tcp or udp: an ICMP-only claim
// carries no ports and does not widen the others' ports to any.
func (m *mitigation) view() Mitigation {
	v := Mitigation{Interface: m.iface, Scope: shaper.ScopeSource, Reason: m.claims[0].reason, Since: m.since}
	anyProto, anyPort := false, false
	for _, c := range m.claims {
		v.Owners = append(v.Owners, c.owner)
		if c.expires.After(v.Expires) {
			v.Expires = c.expires
		}
		switch {
		case c.scope == shaper.ScopePort:
			v.Scope = shaper.ScopePort
		case c.scope == shaper.ScopeNode && v.Scope != shaper.ScopePort:
			v.Scope = shaper.ScopeNode
		}
		v.Sources = append(v.Sources, c.sources...)
		anyProto = anyProto || len(c.protocols) == 0
		v.Protocols = append(v.Protocols, c.protocols...)
		if carriesPorts(c.protocols) {
			anyPort = anyPort || len(c.ports) == 0
			v.Ports = append(v.Ports, c.ports...)
		}
		if c.rate != 0 && (v.RateBps == 0 || c.rate < v.RateBps) {
			v.RateBps = c.rate
		}
	}
	v.Sources = sortPrefixes(v.Sources)
	if v.Scope != shaper.ScopeSource {
		v.Sources = nil
	}
	v.Protocols = sortProtocols(v.Protocols)
	if anyProto {
		v.Protocols = nil
	}
	v.Ports = sortPorts(v.Ports)
	if anyPort {
		v.Ports = nil
	}
	return v
}

// carriesPorts reports whether a throttle of protocols (empty = any) has
// destination ports: only tcp and udp do.
func carriesPorts(protocols []string) bool {
	return len(protocols) == 0 || slices.Contains(protocols, "tcp") || slices.Contains(protocols, "udp")
}

// claim returns owner's claim, if it has one.
func (m *mitigation) claim(owner string) (claim, bool) {
	i := slices.IndexFunc(m.claims, func(c claim) bool { return c.owner == owner })
	if i < 0 {
		return claim{}, false
	}
	return m.claims[i], true
}

// with returns a copy of m in which c replaces its owner's claim or joins last.
func (m *mitigation) with(c claim) *mitigation {
	n := &mitigation{iface: m.iface, since: m.since, claims: slices.Clone(m.claims)}
	if i := slices.IndexFunc(n.claims, func(o claim) bool { return o.owner == c.owner }); i >= 0 {
		n.claims[i] = c
	} else {
		n.claims = append(n.claims, c)
	}
	return n
}

// sameSpec reports whether a and b throttle the same traffic at the same rate.
func sameSpec(a, b Mitigation) bool {
	return a.Scope == b.Scope && slices.Equal(a.Sources, b.Sources) && slices.Equal(a.Protocols, b.Protocols) &&
		slices.Equal(a.Ports, b.Ports) && a.RateBps == b.RateBps
}

// sortPrefixes returns ps masked, sorted and without duplicates, in a new slice.
func sortPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// sortPorts returns ps sorted and without duplicates, in a new slice.
func sortPorts[P uint16 | shaper.PortRange](ps []P) []P {
	out := slices.Clone(ps)
	slices.SortFunc(out, comparePorts)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// sortProtocols returns ps sorted and without duplicates, in a new slice.
func sortProtocols(ps []string) []string {
	out := slices.Clone(ps)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// comparePorts orders ports, and port ranges by first then last port.
func comparePorts[P uint16 | shaper.PortRange](a, b P) int {
	switch a := any(a).(type) {
	case uint16:
		return cmp.Compare(a, any(b).(uint16))
	default:
		x, y := a.(shaper.PortRange), any(b).(shaper.PortRange)
		return cmp.Or(cmp.Compare(x.First, y.First), cmp.Compare(x.Last, y.Last))
	}
}
