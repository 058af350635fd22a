package policy

import (
	"net/netip"
	"slices"
	"time"

	"github.com/egressguard/egressguard/shaper"
)

// claim is what one owner asks of an interface's mitigation.
type claim struct {
	owner   string
	reason  Reason
	scope   shaper.Scope   // shaper.ScopeSource or shaper.ScopeNode
	sources []netip.Prefix // sorted, unique; empty for shaper.ScopeNode
	ports   []uint16       // sorted, unique
	rate    uint64         // bits per second; 0 = throttle.rate
	expires time.Time
}

// mitigation is an interface's claims, oldest owner first.
type mitigation struct {
	iface  string
	since  time.Time
	claims []claim
}

// view merges the claims into the Mitigation the kernel should hold: the
// widest scope, every source and port, the lowest explicit rate.
func (m *mitigation) view() Mitigation {
	v := Mitigation{Interface: m.iface, Scope: shaper.ScopeSource, Reason: m.claims[0].reason, Since: m.since}
	for _, c := range m.claims {
		v.Owners = append(v.Owners, c.owner)
		if c.expires.After(v.Expires) {
			v.Expires = c.expires
		}
		if c.scope == shaper.ScopeNode {
			v.Scope = shaper.ScopeNode
		}
		v.Sources = append(v.Sources, c.sources...)
		v.Ports = append(v.Ports, c.ports...)
		if c.rate != 0 && (v.RateBps == 0 || c.rate < v.RateBps) {
			v.RateBps = c.rate
		}
	}
	v.Sources = sortPrefixes(v.Sources)
	if v.Scope == shaper.ScopeNode {
		v.Sources = nil
	}
	v.Ports = sortPorts(v.Ports)
	return v
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
	return a.Scope == b.Scope && slices.Equal(a.Sources, b.Sources) && slices.Equal(a.Ports, b.Ports) && a.RateBps == b.RateBps
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
func sortPorts(ps []uint16) []uint16 {
	out := slices.Clone(ps)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}
