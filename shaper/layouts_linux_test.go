package shaper

import (
	"context"
	"testing"
)

// TestRootsNamesOurLayoutAndForeignRoots: one dump tells which interfaces
// carry our layout and what the others' roots are, as tc shows them.
func TestRootsNamesOurLayoutAndForeignRoots(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	l := newLab(t, 1)
	s := l.open(t)
	roots, err := s.Roots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := roots[labDev]; r.Ours || r.RootKind != "noqueue" {
		t.Fatalf("before Apply: %s = %+v, want noqueue, not ours", labDev, r)
	}
	if _, err := s.Apply(ctx, mustPlan(t, labSpec()), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if roots, err = s.Roots(ctx); err != nil || !roots[labDev].Ours {
		t.Fatalf("after Apply: %+v, %v; want ours on %s", roots[labDev], err, labDev)
	}
	if roots["lo"].Ours {
		t.Fatalf("lo reported ours: %+v", roots["lo"])
	}
	// An operator replaces our root by hand.
	nsRun(t, l.node, "tc", "qdisc", "replace", "dev", labDev, "root", "handle", "5:", "tbf", "rate", "10mbit", "burst", "32k", "latency", "400ms")
	if roots, err = s.Roots(ctx); err != nil || roots[labDev].Ours || roots[labDev].RootKind != "tbf" {
		t.Fatalf("after a hand-made tbf: %+v, %v; want tbf, not ours", roots[labDev], err)
	}
}
