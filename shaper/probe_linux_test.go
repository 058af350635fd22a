package shaper

import (
	"context"
	"os/exec"
	"testing"
)

// hasQdisc reports whether tc can attach kind as a root in a fresh namespace.
func hasQdisc(t testing.TB, kind string) bool {
	t.Helper()
	ns := newNS(t)
	nsRun(t, ns, "ip", "link", "add", "p0", "type", "veth", "peer", "name", "p1")
	return exec.Command("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "p0", "root", "handle", "1:", kind).Run() == nil
}

func TestProbe(t *testing.T) {
	requireRoot(t)
	f, err := Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("features on this kernel: %+v", f)
	if want := hasQdisc(t, "sfq"); f.SFQ != want {
		t.Errorf("Probe SFQ = %v, tc says %v", f.SFQ, want)
	}
	if want := hasQdisc(t, "fq_codel"); f.FQCodel != want {
		t.Errorf("Probe FQCodel = %v, tc says %v", f.FQCodel, want)
	}
}
