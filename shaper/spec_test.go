package shaper

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func validSpec() Spec {
	return Spec{
		Interface: "eth0",
		Scope:     ScopeNode,
		Rate:      1_000_000,
		Ports:     Ports(80, 443),
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
		{"valid source scope", func(s *Spec) { s.Scope, s.Sources = ScopeSource, []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")} }, ""},
		{"valid port scope", func(s *Spec) { s.Scope, s.Interface = ScopePort, "vnet3" }, ""},
		{"valid any protocol any port", func(s *Spec) { s.Protocols, s.Ports = nil, nil }, ""},
		{"valid icmp", func(s *Spec) { s.Protocols, s.Ports = []string{"icmp"}, nil }, ""},
		{"valid range containing 22", func(s *Spec) { s.Ports = []PortRange{{1, 1024}} }, ""},
		{"empty interface", func(s *Spec) { s.Interface = "" }, `interface ""`},
		{"interface too long", func(s *Spec) { s.Interface = "abcdefghijklmnop" }, `interface "abcdefghijklmnop"`},
		{"interface with slash", func(s *Spec) { s.Interface = "a/b" }, `interface "a/b"`},
		{"bad scope", func(s *Spec) { s.Scope = "vm" }, `scope "vm"`},
		{"source scope without sources", func(s *Spec) { s.Scope = ScopeSource }, "sources []"},
		{"port scope with sources", func(s *Spec) { s.Scope, s.Sources = ScopePort, []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")} }, "only scope source"},
		{"rate 0", func(s *Spec) { s.Rate = 0 }, "rate 0"},
		{"port 0", func(s *Spec) { s.Ports = []PortRange{{80, 80}, {0, 0}} }, "ports[1] 0"},
		{"reversed range", func(s *Spec) { s.Ports = []PortRange{{90, 80}} }, "ports[0] 90-80"},
		{"port 22 throttled", func(s *Spec) { s.Ports = Ports(22) }, "ports[0] 22: SSH"},
		{"whitelisted port throttled", func(s *Spec) { s.WhitelistPorts = []uint16{443} }, "ports[1] 443: the port is whitelisted"},
		{"duplicate port", func(s *Spec) { s.Ports = Ports(443, 443) }, "ports[1] 443: duplicate"},
		{"whitelist port 0", func(s *Spec) { s.WhitelistPorts = []uint16{0} }, "whitelist_ports[0] 0"},
		{"bad protocol", func(s *Spec) { s.Protocols = []string{"tcp", "gre"} }, `protocols[1] "gre": want tcp, udp or icmp`},
		{"duplicate protocol", func(s *Spec) { s.Protocols = []string{"udp", "udp"} }, `protocols[1] "udp": duplicate`},
		{"ports with icmp only", func(s *Spec) { s.Protocols = []string{"icmp"} }, "ports apply to tcp and udp"},
		{"bad resolver", func(s *Spec) { s.Resolvers = []netip.Addr{{}} }, "resolvers[0]"},
		{"source overlapping whitelist CIDR", func(s *Spec) {
			s.Scope = ScopeSource
			s.Sources = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
			s.WhitelistCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.128/25")}
		}, "overlaps whitelist_cidrs"},
		{"source /0", func(s *Spec) { s.Scope, s.Sources = ScopeSource, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }, "a /0 prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.change(&s)
			err := s.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPortRanges(t *testing.T) {
	got, err := ParsePortRanges("80, 443,8000-8080")
	if err != nil {
		t.Fatal(err)
	}
	want := []PortRange{{80, 80}, {443, 443}, {8000, 8080}}
	if !slices.Equal(got, want) {
		t.Fatalf("ParsePortRanges = %v, want %v", got, want)
	}
	for _, bad := range []string{"0", "70000", "9-8", "a", "1-2-3"} {
		if _, err := ParsePortRanges(bad); err == nil {
			t.Errorf("ParsePortRanges(%q) = nil error", bad)
		}
	}
	b, err := json.Marshal(want)
	if err != nil || string(b) != `[80,443,"8000-8080"]` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	var back []PortRange
	if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back, want) {
		t.Fatalf("round trip = %v, %v", back, err)
	}
}

func TestShapingDevice(t *testing.T) {
	for _, tt := range []struct{ iface, want string }{
		{"eth0", "eg-eth0"},
		{"vnet3", "eg-vnet3"},
		{"enp129s0f1np1", "eg-enp129s-"},
	} {
		got := ShapingDevice(tt.iface)
		if len(got) > 15 || !strings.HasPrefix(got, tt.want) {
			t.Errorf("ShapingDevice(%q) = %q, want prefix %q and at most 15 bytes", tt.iface, got, tt.want)
		}
	}
	if ShapingDevice("enp129s0f1np1") == ShapingDevice("enp129s0f1np0") {
		t.Error("two long names share a shaping device")
	}
}
