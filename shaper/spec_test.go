package shaper

import (
	"net/netip"
	"strings"
	"testing"
)

func validSpec() Spec {
	return Spec{
		Interface: "eth0",
		Rate:      1_000_000,
		Ports:     []uint16{80, 443},
		Protocols: []string{"tcp", "udp"},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Spec)
		want   string // substring of the error; "" = valid
	}{
		{"valid node scope", func(*Spec) {}, ""},
		{"valid source scope", func(s *Spec) { s.Sources = []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")} }, ""},
		{"empty interface", func(s *Spec) { s.Interface = "" }, `interface ""`},
		{"interface too long", func(s *Spec) { s.Interface = "abcdefghijklmnop" }, `interface "abcdefghijklmnop"`},
		{"interface with slash", func(s *Spec) { s.Interface = "a/b" }, `interface "a/b"`},
		{"rate 0", func(s *Spec) { s.Rate = 0 }, "rate 0"},
		{"rate above link", func(s *Spec) { s.LinkRate = 500_000 }, "rate 1000000: above link_rate 500000"},
		{"no ports", func(s *Spec) { s.Ports = nil }, "ports []"},
		{"port 0", func(s *Spec) { s.Ports = []uint16{80, 0} }, "ports[1] 0"},
		{"port 22 throttled", func(s *Spec) { s.Ports = []uint16{22} }, "ports[0] 22: SSH"},
		{"whitelisted port throttled", func(s *Spec) { s.WhitelistPorts = []uint16{443} }, "ports[1] 443: the port is whitelisted"},
		{"duplicate port", func(s *Spec) { s.Ports = []uint16{443, 443} }, "ports[1] 443: duplicate"},
		{"whitelist port 0", func(s *Spec) { s.WhitelistPorts = []uint16{0} }, "whitelist_ports[0] 0"},
		{"no protocols", func(s *Spec) { s.Protocols = nil }, "protocols []"},
		{"bad protocol", func(s *Spec) { s.Protocols = []string{"tcp", "icmp"} }, `protocols[1] "icmp": want tcp or udp`},
		{"duplicate protocol", func(s *Spec) { s.Protocols = []string{"udp", "udp"} }, `protocols[1] "udp": duplicate`},
		{"source overlapping whitelist CIDR", func(s *Spec) {
			s.WhitelistCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			s.Sources = []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32")}
		}, "sources[0] 10.1.2.3/32: overlaps whitelist_cidrs 10.0.0.0/8"},
		{"v6 source overlapping whitelist CIDR", func(s *Spec) {
			s.WhitelistCIDRs = []netip.Prefix{netip.MustParsePrefix("2001:db8:1::1/128")}
			s.Sources = []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}
		}, "sources[0] 2001:db8::/32: overlaps whitelist_cidrs 2001:db8:1::1/128"},
		{"source /0", func(s *Spec) { s.Sources = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }, "sources[0] 0.0.0.0/0"},
		{"invalid source", func(s *Spec) { s.Sources = []netip.Prefix{{}} }, "sources[0] invalid Prefix: not a valid CIDR"},
		{"4in6 whitelist", func(s *Spec) { s.WhitelistCIDRs = []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")} }, "whitelist_cidrs[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.change(&s)
			err := s.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate() = %q, want it to contain %q", err, tt.want)
			}
			if _, perr := NewPlan(s, Features{}); (perr == nil) != (err == nil) {
				t.Fatalf("NewPlan error %v disagrees with Validate error %v", perr, err)
			}
		})
	}
}

func TestScope(t *testing.T) {
	s := validSpec()
	if s.Scope() != ScopeNode {
		t.Fatalf("Scope() = %q without sources, want node", s.Scope())
	}
	s.Sources = []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")}
	if s.Scope() != ScopeSource {
		t.Fatalf("Scope() = %q with sources, want source", s.Scope())
	}
}
