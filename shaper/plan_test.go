package shaper

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenPlans are the layouts whose Render output is checked in under testdata/.
func goldenPlans() []struct {
	name     string
	spec     Spec
	features Features
} {
	pfx := netip.MustParsePrefix
	withSpec := func(change func(*Spec)) Spec {
		s := validSpec()
		change(&s)
		return s
	}
	return []struct {
		name     string
		spec     Spec
		features Features
	}{
		{"default", validSpec(), Features{SFQ: true, FQCodel: true}},
		{"scope_source", withSpec(func(s *Spec) {
			s.Scope, s.Sources = ScopeSource, []netip.Prefix{pfx("10.0.0.5/32"), pfx("2001:db8:1:2::/64")}
		}), Features{SFQ: true}},
		{"scope_port", withSpec(func(s *Spec) {
			s.Interface, s.Scope, s.Protocols, s.Ports = "vnet3", ScopePort, []string{"tcp"}, nil
		}), Features{}},
		{"whitelist", withSpec(func(s *Spec) {
			s.WhitelistPorts = []uint16{51820}
			s.WhitelistCIDRs = []netip.Prefix{pfx("192.0.2.0/24"), pfx("2001:db8:abcd::/48")}
			s.Resolvers = []netip.Addr{netip.MustParseAddr("198.18.0.53")}
		}), Features{SFQ: true}},
		{"icmp_udp_range", withSpec(func(s *Spec) {
			s.Protocols, s.Ports = []string{"udp", "icmp"}, []PortRange{{1000, 2000}}
		}), Features{FQCodel: true}},
	}
}

func TestRenderGolden(t *testing.T) {
	for _, g := range goldenPlans() {
		t.Run(g.name, func(t *testing.T) {
			p, err := NewPlan(g.spec, g.features)
			if err != nil {
				t.Fatal(err)
			}
			got := p.Render()
			path := filepath.Join("testdata", g.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./shaper -run TestRenderGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("Render() differs from %s (rerun with -update after checking):\n%s", path, got)
			}
		})
	}
}

func TestLeafSizedInTime(t *testing.T) {
	for _, tt := range []struct {
		rate uint64
		f    Features
		want Qdisc
	}{
		{1_000_000, Features{}, Qdisc{Kind: "bfifo", Limit: 12500}},
		{100_000_000, Features{}, Qdisc{Kind: "bfifo", Limit: 1_250_000}},
		{100_000, Features{}, Qdisc{Kind: "bfifo", Limit: minLeafBytes}},
		{10_000_000, Features{SFQ: true}, Qdisc{Kind: "sfq", Limit: 82, Perturb: 10}},
		{1_000_000, Features{FQCodel: true}, Qdisc{Kind: "fq_codel", Limit: 8}},
	} {
		got := newLeaf(tt.rate, tt.f)
		got.Parent, got.Handle = 0, 0
		if got != tt.want {
			t.Errorf("newLeaf(%d, %+v) = %+v, want %+v", tt.rate, tt.f, got, tt.want)
		}
	}
}
