package shaper

import (
	"context"
	"testing"
)

// TestRootsNamesOurLayoutAndForeignRoots: one dump tells which interfaces
// carry our layout (never the shaping device itself) and what their roots
// are, as tc shows them; a foreign root does not hide our layout.
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
	if _, err := s.Apply(ctx, mustPlan(t, labSpec(1_000_000), Features{}), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if roots, err = s.Roots(ctx); err != nil || !roots[labDev].Ours || !roots[labDev].Intact || roots[labDev].RootKind != "noqueue" {
		t.Fatalf("after Apply: %+v, %v; want ours and intact on %s, root noqueue", roots[labDev], err, labDev)
	}
	if r := roots[ShapingDevice(labDev)]; r.Ours || r.RootKind != "htb" {
		t.Fatalf("the shaping device: %+v, want its htb root and not ours", r)
	}
	if roots["lo"].Ours {
		t.Fatalf("lo reported ours: %+v", roots["lo"])
	}
	nsRun(t, l.node, "tc", "qdisc", "replace", "dev", labDev, "root", "handle", "5:", "tbf", "rate", "10mbit", "burst", "32k", "latency", "400ms")
	if roots, err = s.Roots(ctx); err != nil || !roots[labDev].Ours || roots[labDev].RootKind != "tbf" {
		t.Fatalf("after a hand-made tbf root: %+v, %v; want tbf and still ours", roots[labDev], err)
	}
	// Our classifier deleted by hand: drift, ours but not intact until
	// Apply repairs it.
	nsRun(t, l.node, "tc", "filter", "del", "dev", labDev, "egress", "prio", "233")
	if roots, err = s.Roots(ctx); err != nil || !roots[labDev].Ours || roots[labDev].Intact {
		t.Fatalf("without the classifier: %+v, %v; want ours, not intact", roots[labDev], err)
	}
	if _, err := s.Apply(ctx, mustPlan(t, labSpec(1_000_000), Features{}), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if roots, err = s.Roots(ctx); err != nil || !roots[labDev].Intact {
		t.Fatalf("after the repair: %+v, %v; want intact", roots[labDev], err)
	}
	if err := s.Remove(ctx, labDev, Previous{}); err != nil {
		t.Fatal(err)
	}
	if roots, err = s.Roots(ctx); err != nil || roots[labDev].Ours {
		t.Fatalf("after Remove: %+v, %v; want not ours", roots[labDev], err)
	}
}
