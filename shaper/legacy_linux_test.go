package shaper

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestUpgradeReleasesLegacyRoot: a node upgraded while the previous release's
// root-HTB throttle (handle e9:, installed by its `plan` output, kept in
// testdata) is active and its state file records the root it replaced (mq).
// Applying the new layout with that record releases the old root and
// restores mq; Remove then leaves nothing.
func TestUpgradeReleasesLegacyRoot(t *testing.T) {
	requireRoot(t)
	l := newLab(t, 4)
	nsRun(t, l.node, "tc", "qdisc", "replace", "dev", labDev, "root", "handle", "1:", "mq")
	before := nsRun(t, l.node, "tc", "qdisc", "show", "dev", labDev)
	// The previous release recorded the root it replaced like this.
	var rec struct {
		Previous Previous `json:"previous"`
	}
	if err := json.Unmarshal([]byte(`{"previous":{"kind":"mq","handle":65536}}`), &rec); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile("testdata/legacy_root_htb.tc")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(old)), "\n") {
		nsRun(t, l.node, "sh", "-c", line)
	}
	s := l.open(t)
	ctx := context.Background()
	in, err := s.Inspect(ctx, labDev)
	if err != nil || !in.Legacy || !in.Ours {
		t.Fatalf("Inspect of the legacy layout = %+v, %v", in, err)
	}
	res, err := s.Apply(ctx, mustPlan(t, labSpec(1_000_000), Features{}), ApplyOptions{Legacy: rec.Previous})
	if err != nil {
		t.Fatal(err)
	}
	if !res.ReleasedLegacy || !res.Installed {
		t.Fatalf("Apply = %+v, want the legacy root released and the new layout installed", res)
	}
	if q := nsRun(t, l.node, "tc", "qdisc", "show", "dev", labDev, "root"); !strings.HasPrefix(q, "qdisc mq 1: root") {
		t.Errorf("root after upgrade:\n%s", q)
	}
	if err := s.Remove(ctx, labDev, Previous{}); err != nil {
		t.Fatal(err)
	}
	l.assertClean(t)
	if after := nsRun(t, l.node, "tc", "qdisc", "show", "dev", labDev); after != before {
		t.Errorf("after upgrade and release:\n%s\nwant as before the old throttle:\n%s", after, before)
	}
}
