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
