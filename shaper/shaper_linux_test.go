package shaper

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func labSpec() Spec {
	return Spec{Interface: labDev, Rate: 1_000_000, Ports: []uint16{80, 443}, Protocols: []string{"tcp", "udp"}}
}

func mustPlan(t testing.TB, s Spec) Plan {
	t.Helper()
	p, err := NewPlan(s, Features{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkInstalled compares what tc reads back with the Plan in band.
func checkInstalled(t *testing.T, l lab, p Plan, band uint16) {
	t.Helper()
	got := parseTC(t,
		nsRun(t, l.node, "tc", "-s", "qdisc", "show", "dev", labDev),
		nsRun(t, l.node, "tc", "-s", "class", "show", "dev", labDev),
		nsRun(t, l.node, "tc", "filter", "show", "dev", labDev))
	want := planObjects(p, band)
	slices.Sort(got.qdiscs)
	slices.Sort(want.qdiscs)
	slices.Sort(got.classes)
	slices.Sort(want.classes)
	for _, c := range []struct {
		what      string
		got, want []string
	}{{"qdiscs", got.qdiscs, want.qdiscs}, {"classes", got.classes, want.classes}, {"filters", got.filters, want.filters}} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("tc %s differ from the plan:\ngot:\n  %s\nwant:\n  %s", c.what, strings.Join(c.got, "\n  "), strings.Join(c.want, "\n  "))
		}
	}
}

func TestApplyReadsBackAsPlanned(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		change func(*Spec)
	}{
		{"node scope", func(*Spec) {}},
		{"source scope v4 and v6", func(s *Spec) {
			s.Sources = labSources()
		}},
		{"whitelist cidrs and ports", func(s *Spec) {
			s.WhitelistPorts = []uint16{51820}
			s.WhitelistCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8:abcd::/48")}
			s.LinkRate = 10_000_000_000
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, 1)
			s := l.open(t)
			spec := labSpec()
			tt.change(&spec)
			p := mustPlan(t, spec)
			res, err := s.Apply(ctx, p, ApplyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Replaced || !res.Changed || res.Previous.Kind != "noqueue" {
				t.Fatalf("Apply = %+v, want Replaced, Changed, previous noqueue", res)
			}
			checkInstalled(t, l, p, 0)
			in, err := s.Inspect(ctx, labDev)
			if err != nil {
				t.Fatal(err)
			}
			if !in.Ours || in.RootKind != "htb" || in.Rate != spec.Rate || in.LeafKind != p.Leaves[0].Kind || in.Filters != len(p.Filters) {
				t.Errorf("Inspect = %+v, want ours htb rate %d leaf %s with %d filters", in, spec.Rate, p.Leaves[0].Kind, len(p.Filters))
			}
		})
	}
}

func TestRemoveRestoresPreviousRoot(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		queues int
		setup  []string // tc arguments run before Apply
		kind   string
	}{
		{"veth default noqueue", 1, nil, "noqueue"},
		{"explicit pfifo_fast", 1, []string{"qdisc", "add", "dev", labDev, "root", "handle", "1:", "pfifo_fast"}, "pfifo_fast"},
		{"multiqueue veth mq", 4, []string{"qdisc", "add", "dev", labDev, "root", "handle", "7:", "mq"}, "mq"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, tt.queues)
			if tt.setup != nil {
				nsRun(t, l.node, append([]string{"tc"}, tt.setup...)...)
			}
			before := l.tcShow(t)
			s := l.open(t)
			res, err := s.Apply(ctx, mustPlan(t, labSpec()), ApplyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Previous.Kind != tt.kind {
				t.Fatalf("Previous.Kind = %q, want %q", res.Previous.Kind, tt.kind)
			}
			if err := s.Remove(ctx, labDev, res.Previous); err != nil {
				t.Fatal(err)
			}
			if after := l.tcShow(t); after != before {
				t.Errorf("Remove did not restore the interface:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func TestForeignRootRefusedUnlessForce(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	l := newLab(t, 1)
	nsRun(t, l.node, "tc", "qdisc", "add", "dev", labDev, "root", "handle", "5:", "tbf", "rate", "10mbit", "burst", "32k", "latency", "400ms")
	before := l.tcShow(t)
	s := l.open(t)
	p := mustPlan(t, labSpec())
	_, err := s.Apply(ctx, p, ApplyOptions{})
	if !errors.Is(err, ErrForeignRoot) {
		t.Fatalf("Apply over tbf = %v, want ErrForeignRoot", err)
	}
	if !strings.Contains(err.Error(), labDev) || !strings.Contains(err.Error(), "tbf") {
		t.Errorf("error %q does not name the interface and the qdisc", err)
	}
	t.Logf("refusal: %v", err)
	if after := l.tcShow(t); after != before {
		t.Fatalf("refused Apply changed the interface:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	res, err := s.Apply(ctx, p, ApplyOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replaced || res.Previous.Kind != "tbf" {
		t.Fatalf("forced Apply = %+v, want tbf replaced", res)
	}
	checkInstalled(t, l, p, 0)
	if err := s.Remove(ctx, labDev, res.Previous); err != nil {
		t.Fatal(err)
	}
	if after := l.tcShow(t); after != before {
		t.Errorf("Remove did not restore the tbf root:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
