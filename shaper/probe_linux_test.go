package shaper

import (
	"context"
	"testing"
)

func TestProbe(t *testing.T) {
	requireRoot(t)
	f, err := Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("features on this kernel: %+v", f)
	want := hasQdisc(t, "sfq")
	if f.SFQ != want {
		t.Errorf("Probe SFQ = %v, tc says %v", f.SFQ, want)
	}
	if f.FQCodel != hasQdisc(t, "fq_codel") {
		t.Errorf("Probe FQCodel = %v, tc disagrees", f.FQCodel)
	}
}

// TestProbeLeafFindsPfifo checks the probe mechanism with a qdisc every
// kernel has, so a kernel without sfq and fq_codel still tests it.
func TestProbeLeafFindsPfifo(t *testing.T) {
	requireRoot(t)
	l := newLab(t, 1)
	s := l.open(t)
	p := mustPlan(t, labSpec())
	p.Leaves = nil
	idx, err := s.linkIndex(labDev)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.install(idx, p); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		q    Qdisc
		want bool
	}{
		{Qdisc{Kind: "pfifo", Limit: 10}, true},
		{Qdisc{Kind: "pfifo", Limit: 20}, true}, // the first one was detached again
		{Qdisc{Kind: "sfq", Perturb: 10}, hasQdisc(t, "sfq")},
	} {
		if got := s.probeLeaf(idx, labDev, tt.q); got != tt.want {
			t.Errorf("probeLeaf(%+v) = %v, want %v", tt.q, got, tt.want)
		}
	}
}
