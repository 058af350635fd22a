package shaper

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/egressguard/egressguard/internal/netif"
)

// Scope says which traffic of an interface a Plan throttles.
type Scope string

const (
	// ScopeNode throttles the signature for every source, on the uplink's egress.
	ScopeNode Scope = "node"
	// ScopeSource throttles the signature only for Spec.Sources, on the uplink's egress.
	ScopeSource Scope = "source"
	// ScopePort throttles the signature for everything a VM sends through its
	// bridge port (Spec.Interface), on that port's ingress, whatever source
	// addresses the VM uses.
	ScopePort Scope = "port"
)

// SSHPort is always whitelisted in both directions and can never be throttled.
const SSHPort uint16 = 22

// DNSPort is whitelisted to and from the node's resolvers (Spec.Resolvers).
const DNSPort uint16 = 53

// PortRange is an inclusive range of transport ports; First == Last for one
// port. In JSON it is a number (443) or a string ("1000-2000").
type PortRange struct{ First, Last uint16 }

// Ports turns single ports into ranges.
func Ports(ports ...uint16) []PortRange {
	out := make([]PortRange, len(ports))
	for i, p := range ports {
		out[i] = PortRange{p, p}
	}
	return out
}

// String formats r as "443" or "1000-2000".
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// Contains reports whether port p lies in r.
func (r PortRange) Contains(p uint16) bool { return r.First <= p && p <= r.Last }

// MarshalJSON writes a single port as a number, a range as "first-last".
func (r PortRange) MarshalJSON() ([]byte, error) {
	if r.First == r.Last {
		return json.Marshal(r.First)
	}
	return json.Marshal(r.String())
}

// UnmarshalJSON reads what MarshalJSON writes; numbers are what state files
// of earlier releases hold.
func (r *PortRange) UnmarshalJSON(b []byte) error {
	var n uint16
	if err := json.Unmarshal(b, &n); err == nil {
		*r = PortRange{n, n}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("port range %s: want a port or \"first-last\"", b)
	}
	got, err := ParsePortRange(s)
	if err != nil {
		return err
	}
	*r = got
	return nil
}

// ParsePortRange parses "443" or "1000-2000" (1-65535, first ≤ last).
func ParsePortRange(s string) (PortRange, error) {
	first, last, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		last = first
	}
	a, err1 := strconv.ParseUint(first, 10, 16)
	b, err2 := strconv.ParseUint(last, 10, 16)
	if err1 != nil || err2 != nil || a == 0 || b == 0 || a > b {
		return PortRange{}, fmt.Errorf("%q: want a port 1-65535 or a range like 1000-2000", s)
	}
	return PortRange{uint16(a), uint16(b)}, nil
}

// ParsePortRanges parses a comma-separated list of ports and ranges
// ("80,443,8000-8080"); "any" or "" is the empty list (every port).
func ParsePortRanges(s string) ([]PortRange, error) {
	if s = strings.TrimSpace(s); s == "" || s == "any" {
		return nil, nil
	}
	var out []PortRange
	for _, f := range strings.Split(s, ",") {
		r, err := ParsePortRange(f)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Protocols a Spec may throttle; an empty Spec.Protocols means any IP protocol.
var protocolNames = []string{"tcp", "udp", "icmp"}

// Spec says what to throttle where. Interface is the uplink for scopes node
// and source and the VM's bridge port (tap, vnet, veth) for scope port.
type Spec struct {
	Interface string
	Scope     Scope          // node, source (Sources required) or port
	Rate      uint64         // bits/s of the throttled class (rate = ceil)
	Protocols []string       // "tcp", "udp", "icmp" (ICMPv6 for IPv6); empty = any IP protocol
	Ports     []PortRange    // destination ports of tcp and udp; empty = any
	Sources   []netip.Prefix // scope source: the offending source addresses
	// Never throttled, in both directions: SSH 22 (always), these ports, these
	// CIDRs, and DNS (53) to and from these resolvers.
	WhitelistPorts []uint16
	WhitelistCIDRs []netip.Prefix
	Resolvers      []netip.Addr
}

// Rates a Spec may ask for, in bits per second: HTB cannot pace below a byte
// per second, and above 1tbit no NIC is the limit, so such a rate is a
// mistake (2^64-1 from a bad client).
const (
	MinRate = 8
	MaxRate = 1_000_000_000_000
)

// Validate rejects a Spec that cannot be installed or that would throttle
// only whitelisted traffic; the error (a *FieldError for the Spec's fields)
// names the field and the value.
func (s Spec) Validate() error {
	if err := validInterface(s.Interface); err != nil {
		return err
	}
	switch s.Scope {
	case ScopeNode, ScopePort:
		if len(s.Sources) > 0 {
			return fieldError("sources", -1, s.Sources, fmt.Sprintf("only scope source names sources, not scope %s", s.Scope))
		}
	case ScopeSource:
		if len(s.Sources) == 0 {
			return fieldError("sources", -1, "[]", "scope source needs at least one source")
		}
	default:
		return fieldError("scope", -1, string(s.Scope), "want node, source or port")
	}
	if s.Rate < MinRate || s.Rate > MaxRate {
		return fieldError("rate", -1, s.Rate, fmt.Sprintf("want a rate from %d to %d bit/s (8bit to 1tbit)", uint64(MinRate), uint64(MaxRate)))
	}
	for i, p := range s.Protocols {
		if !slices.Contains(protocolNames, p) {
			return fieldError("protocols", i, p, "want tcp, udp or icmp (none = any)")
		}
		if slices.Contains(s.Protocols[:i], p) {
			return fieldError("protocols", i, p, "duplicate protocol")
		}
	}
	if len(s.Ports) > 0 && len(s.Protocols) > 0 && !slices.Contains(s.Protocols, "tcp") && !slices.Contains(s.Protocols, "udp") {
		return fieldError("ports", -1, s.Ports, fmt.Sprintf("ports apply to tcp and udp, protocols are %v", s.Protocols))
	}
	whitelisted := append([]uint16{SSHPort}, s.WhitelistPorts...)
	for i, r := range s.Ports {
		switch {
		case r.First == 0 || r.First > r.Last:
			return fieldError("ports", i, r, "want a port 1-65535 or a range first-last")
		case r.First == r.Last && r.First == SSHPort:
			return fieldError("ports", i, r, "SSH is always whitelisted and cannot be throttled")
		case r.First == r.Last && slices.Contains(whitelisted, r.First):
			return fieldError("ports", i, r, "the port is whitelisted (whitelist_ports) and cannot be throttled")
		case slices.Contains(s.Ports[:i], r):
			return fieldError("ports", i, r, "duplicate port")
		}
	}
	for i, p := range s.WhitelistPorts {
		if p == 0 {
			return fieldError("whitelist_ports", i, p, "want a port in 1-65535")
		}
	}
	for i, c := range s.WhitelistCIDRs {
		if err := validPrefix("whitelist_cidrs", i, c); err != nil {
			return err
		}
	}
	for i, a := range s.Resolvers {
		if !a.IsValid() || a.Is4In6() {
			return fieldError("resolvers", i, a, "want an IPv4 or IPv6 address")
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
	Field  string // the Spec field in snake case: scope, rate, ports, protocols, sources, resolvers, whitelist_ports, whitelist_cidrs
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
