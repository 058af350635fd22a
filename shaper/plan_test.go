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
		{"scope_source", withSpec(func(s *Spec) { s.Sources = []netip.Prefix{pfx("10.0.0.5/32"), pfx("10.0.1.0/24")} }), Features{SFQ: true}},
		{"source_v6", withSpec(func(s *Spec) { s.Sources = []netip.Prefix{pfx("2001:db8:1:2::/64")}; s.Protocols = []string{"udp"} }), Features{SFQ: true}},
		{"whitelist_cidrs", withSpec(func(s *Spec) {
			s.WhitelistPorts = []uint16{51820}
			s.WhitelistCIDRs = []netip.Prefix{pfx("192.0.2.0/24"), pfx("2001:db8:abcd::/48")}
			s.LinkRate = 10_000_000_000
		}), Features{SFQ: true}},
		{"fq_codel", validSpec(), Features{FQCodel: true}},
		{"pfifo", validSpec(), Features{}},
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
				t.Errorf("Render() differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
			}
		})
	}
}

func TestPlanLeavesAndWarnings(t *testing.T) {
	tests := []struct {
		features Features
		kind     string
		warned   bool
	}{
		{Features{SFQ: true, FQCodel: true}, "sfq", false},
		{Features{FQCodel: true}, "fq_codel", false},
		{Features{}, "pfifo", true},
	}
	for _, tt := range tests {
		p, err := NewPlan(validSpec(), tt.features)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range p.Leaves {
			if l.Kind != tt.kind {
				t.Errorf("%+v: leaf %s is %s, want %s", tt.features, l.Handle, l.Kind, tt.kind)
			}
		}
		if (len(p.Warnings) > 0) != tt.warned {
			t.Errorf("%+v: warnings %q, want warned=%v", tt.features, p.Warnings, tt.warned)
		}
	}
}

func TestPlanFilterOrder(t *testing.T) {
	s := validSpec()
	s.Sources = []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")}
	p, err := NewPlan(s, Features{})
	if err != nil {
		t.Fatal(err)
	}
	lastWhitelist, firstThrottle := uint16(0), uint16(0xffff)
	for _, f := range p.Filters {
		switch f.Purpose {
		case "whitelist":
			lastWhitelist = max(lastWhitelist, f.Prio)
			if f.FlowID != OtherClass {
				t.Errorf("whitelist filter %+v goes to %s", f, f.FlowID)
			}
		case "throttle":
			firstThrottle = min(firstThrottle, f.Prio)
			if f.Protocol != "ip" {
				t.Errorf("v4-only sources produced a %s throttle filter", f.Protocol)
			}
		}
	}
	if lastWhitelist >= firstThrottle {
		t.Errorf("whitelist prio %d not before throttle prio %d", lastWhitelist, firstThrottle)
	}
}

func TestMatchKeys(t *testing.T) {
	// Expected values are what iproute2 6.1 `tc filter show` prints for the
	// same `match` words.
	tests := []struct {
		m    Match
		v6   bool
		want []u32Key
	}{
		{Match{Field: "protocol", Value: 6}, false, []u32Key{{0x00060000, 0x00ff0000, 8}}},
		{Match{Field: "dport", Value: 443}, false, []u32Key{{0x000001bb, 0x0000ffff, 20}}},
		{Match{Field: "sport", Value: 22}, false, []u32Key{{0x00160000, 0xffff0000, 20}}},
		{Match{Field: "src", Prefix: netip.MustParsePrefix("10.1.0.0/16")}, false, []u32Key{{0x0a010000, 0xffff0000, 12}}},
		{Match{Field: "dst", Prefix: netip.MustParsePrefix("192.0.2.7/32")}, false, []u32Key{{0xc0000207, 0xffffffff, 16}}},
		{Match{Field: "protocol", Value: 17}, true, []u32Key{{0x00001100, 0x0000ff00, 4}}},
		{Match{Field: "dport", Value: 443}, true, []u32Key{{0x000001bb, 0x0000ffff, 40}}},
		{Match{Field: "src", Prefix: netip.MustParsePrefix("2001:db8:1:2::/64")}, true,
			[]u32Key{{0x20010db8, 0xffffffff, 8}, {0x00010002, 0xffffffff, 12}}},
		{Match{Field: "dst", Prefix: netip.MustParsePrefix("2001:db8:ab00::/40")}, true,
			[]u32Key{{0x20010db8, 0xffffffff, 24}, {0xab000000, 0xff000000, 28}}},
	}
	for _, tt := range tests {
		got := tt.m.keys(tt.v6)
		if len(got) != len(tt.want) {
			t.Errorf("%+v: keys %x, want %x", tt.m, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%+v: key %d = %x, want %x", tt.m, i, got[i], tt.want[i])
			}
		}
	}
}
