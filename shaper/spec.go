package shaper

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/egressguard/egressguard/internal/netif"
)

// Scope says which sources a Plan throttles.
type Scope string

const (
	// ScopeNode throttles the ports for every source on the interface.
	ScopeNode Scope = "node"
	// ScopeSource throttles the ports only for Spec.Sources.
	ScopeSource Scope = "source"
)

// SSHPort is always whitelisted in both directions and can never be throttled.
const SSHPort uint16 = 22

// Spec says what to throttle on one interface.
type Spec struct {
	Interface      string
	Rate           uint64         // bits/s of the throttled class (rate = ceil)
	LinkRate       uint64         // bits/s for the parent and "other" classes; 0 = unknown → 100gbit
	Ports          []uint16       // throttled destination ports (e.g. 80, 443)
	Protocols      []string       // "tcp", "udp"
	Sources        []netip.Prefix // non-empty → scope source (match src as well), else node
	WhitelistPorts []uint16       // SSH 22 is always added by NewPlan; e.g. 51820
	WhitelistCIDRs []netip.Prefix // as source or destination → class "other"
}

// Scope is ScopeSource when the Spec names sources, else ScopeNode.
func (s Spec) Scope() Scope {
	if len(s.Sources) > 0 {
		return ScopeSource
	}
	return ScopeNode
}

// Rates a Spec may ask for, in bits per second: HTB cannot pace below a byte
// per second, and above 1tbit (ten times the 100gbit ceiling of §4) no NIC
// is the limit, so such a rate is a mistake (2^64-1 from a bad client).
const (
	MinRate = 8
	MaxRate = 1_000_000_000_000
)

// Validate rejects a Spec that cannot be installed or that would throttle
// SSH, a whitelisted port or a whitelisted CIDR; the error names the field
// and the value.
func (s Spec) Validate() error {
	if err := validInterface(s.Interface); err != nil {
		return err
	}
	if s.Rate < MinRate || s.Rate > MaxRate {
		return fieldError("rate", -1, s.Rate, fmt.Sprintf("want a rate from %d to %d bit/s (8bit to 1tbit)", uint64(MinRate), uint64(MaxRate)))
	}
	if s.LinkRate != 0 && s.Rate > s.LinkRate {
		return fieldError("rate", -1, s.Rate, fmt.Sprintf("above link_rate %d bit/s", s.LinkRate))
	}
	if len(s.Ports) == 0 {
		return fieldError("ports", -1, "[]", "want at least one port to throttle")
	}
	for i, p := range s.Ports {
		switch {
		case p == 0:
			return fieldError("ports", i, p, "want a port in 1-65535")
		case p == SSHPort:
			return fieldError("ports", i, p, "SSH is always whitelisted and cannot be throttled")
		case slices.Contains(s.WhitelistPorts, p):
			return fieldError("ports", i, p, "the port is whitelisted (whitelist_ports) and cannot be throttled")
		case slices.Contains(s.Ports[:i], p):
			return fieldError("ports", i, p, "duplicate port")
		}
	}
	for i, p := range s.WhitelistPorts {
		if p == 0 {
			return fieldError("whitelist_ports", i, p, "want a port in 1-65535")
		}
	}
	if len(s.Protocols) == 0 {
		return fieldError("protocols", -1, "[]", "want tcp, udp or both")
	}
	for i, p := range s.Protocols {
		if _, ok := ipProtocol(p); !ok {
			return fieldError("protocols", i, p, "want tcp or udp")
		}
		if slices.Contains(s.Protocols[:i], p) {
			return fieldError("protocols", i, p, "duplicate protocol")
		}
	}
	for i, c := range s.WhitelistCIDRs {
		if err := validPrefix("whitelist_cidrs", i, c); err != nil {
			return err
		}
	}
	for i, src := range s.Sources {
		if err := validPrefix("sources", i, src); err != nil {
			return err
		}
		for _, w := range s.WhitelistCIDRs {
			if src.Overlaps(w) {
				return fieldError("sources", i, src, fmt.Sprintf("overlaps whitelist_cidrs %s and cannot be throttled", w))
			}
		}
	}
	return nil
}

func validInterface(name string) error {
	if err := netif.ValidName(name); err != nil {
		return fmt.Errorf("shaper: interface %w", err)
	}
	return nil
}

func validPrefix(field string, i int, p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fieldError(field, i, p, "not a valid CIDR")
	case p.Addr().Is4In6():
		return fieldError(field, i, p, "write IPv4-mapped addresses as IPv4")
	case p.Bits() == 0:
		return fieldError(field, i, p, "a /0 prefix matches everything")
	}
	return nil
}

// FieldError is a Spec field that fails Validate. The config and the CLI
// name the field in their own terms (throttle.ports, --ports) from Field.
type FieldError struct {
	Field  string // the Spec field in snake case: rate, ports, protocols, sources, whitelist_ports, whitelist_cidrs
	Index  int    // the element at fault, or -1 for the field as a whole
	Value  string // the value at fault, as written in the error
	Reason string
}

func (e *FieldError) Error() string {
	return "shaper: " + e.Path(e.Field) + " " + e.Value + ": " + e.Reason
}

// Path is name followed by the element index, if any ("ports[2]").
func (e *FieldError) Path(name string) string {
	if e.Index < 0 {
		return name
	}
	return fmt.Sprintf("%s[%d]", name, e.Index)
}

func fieldError(field string, i int, v any, reason string) *FieldError {
	val := fmt.Sprint(v)
	if s, ok := v.(string); ok && s != "[]" {
		val = fmt.Sprintf("%q", s)
	}
	return &FieldError{Field: field, Index: i, Value: val, Reason: reason}
}

// ipProtocol maps a protocol a Spec may name to its IP protocol number.
func ipProtocol(name string) (uint8, bool) {
	switch name {
	case "tcp":
		return 6, true
	case "udp":
		return 17, true
	}
	return 0, false
}
