package control

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/shaper"
)

// fakeKernel holds one interface. root is "htb" while a layout of ours is
// on it (the clsact layout, or with legacy the root-HTB throttle of an
// earlier release), else the interface's root kind.
type fakeKernel struct {
	root     string
	legacy   bool
	told     []shaper.Previous // what each Apply was told about a legacy throttle
	removed  []shaper.Previous
	onApply  func() // runs after the kernel changed
	onRemove func() // runs after the kernel changed
	rate     uint64 // of the throttled class, read back by Inspect
}

func (k *fakeKernel) Apply(_ context.Context, _ shaper.Plan, o shaper.ApplyOptions) (shaper.ApplyResult, error) {
	if k.onApply != nil {
		defer k.onApply()
	}
	k.told = append(k.told, o.Legacy)
	res := shaper.ApplyResult{Installed: k.root != "htb" || k.legacy, Changed: true, ReleasedLegacy: k.legacy}
	k.root, k.legacy = "htb", false
	return res, nil
}

func (k *fakeKernel) Remove(_ context.Context, _ string, prev shaper.Previous) error {
	if k.onRemove != nil {
		defer k.onRemove()
	}
	k.removed = append(k.removed, prev)
	k.root, k.legacy = prev.Kind, false
	if k.root == "" {
		k.root = "noqueue"
	}
	return nil
}

func (k *fakeKernel) Inspect(context.Context, string) (shaper.Installed, error) {
	return shaper.Installed{Ours: k.root == "htb", Intact: k.root == "htb" && !k.legacy, Legacy: k.legacy, RootKind: k.root, Rate: k.rate}, nil
}

// Roots reports lo, the one interface the fake holds, and eth9 with the
// kernel's default root.
func (k *fakeKernel) Roots(context.Context) (map[string]shaper.Installed, error) {
	return map[string]shaper.Installed{
		"lo":   {Ours: k.root == "htb", Intact: k.root == "htb" && !k.legacy, Legacy: k.legacy, RootKind: k.root},
		"eth9": {RootKind: "noqueue"},
	}, nil
}

func newController(t *testing.T, root string) (*Controller, *fakeKernel) {
	t.Helper()
	store, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKernel{root: root}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	return &Controller{Store: store, Kernel: k, Now: func() time.Time { return now }, RecoverTTL: 30 * time.Minute,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, k
}

// lo exists on every machine, so removal's interface check finds it.
func spec(rate uint64) shaper.Spec {
	return shaper.Spec{Interface: "lo", Rate: rate, Scope: shaper.ScopeNode, Ports: shaper.Ports(443), Protocols: []string{"tcp"}}
}

// TestUpgradeReleasesTheLegacyThrottle: a record of an earlier release
// names the root its root-HTB throttle replaced; the next Install hands it
// to the kernel, which restores that root, and the record forgets it.
func TestUpgradeReleasesTheLegacyThrottle(t *testing.T) {
	c, k := newController(t, "htb")
	k.legacy = true
	ctx := context.Background()
	exp := c.Now().Add(time.Hour)
	var st state.State
	st.Put(state.Mitigation{Interface: "lo", Reason: policy.ReasonDetector, Owners: []string{string(policy.ReasonDetector)},
		Previous: shaper.Previous{Kind: "pfifo_fast"}, Expires: exp})
	if err := c.Store.Save(st); err != nil {
		t.Fatal(err)
	}
	m, err := c.Install(ctx, Request{Spec: spec(2e6), Reason: policy.ReasonWebhook, Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	if len(k.told) != 1 || k.told[0].Kind != "pfifo_fast" || k.legacy {
		t.Fatalf("Apply told %+v, legacy left %v; want the recorded pfifo_fast handed over and the old throttle released", k.told, k.legacy)
	}
	if m.Previous.Kind != "" || m.RateBps != 2e6 || len(m.Owners) != 2 {
		t.Fatalf("after the upgrade: %+v; want no previous root left, the new rate, both owners", m)
	}
	if err := c.Unthrottle(ctx, "lo"); err != nil {
		t.Fatal(err)
	}
	if len(k.removed) != 1 || k.removed[0].Kind != "" || k.root != "noqueue" {
		t.Fatalf("removed with %+v, root %s; want the new layout removed, nothing left to restore", k.removed, k.root)
	}
	if err := c.Unthrottle(ctx, "lo"); !errors.Is(err, ErrNotThrottled) {
		t.Fatalf("second unthrottle: %v, want ErrNotThrottled", err)
	}
}

func TestFailedRecordUndoesTheKernel(t *testing.T) {
	c, k := newController(t, "noqueue")
	// Once the kernel has changed, a directory where the state file goes
	// makes Save's rename fail.
	k.onApply = func() {
		if err := os.Mkdir(c.Store.Path(), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Install(context.Background(), Request{Spec: spec(1e6), Reason: policy.ReasonManual, Expires: c.Now()}); err == nil {
		t.Fatal("Install succeeded without a state file")
	}
	if k.root != "noqueue" || len(k.removed) != 1 {
		t.Fatalf("root %s after a failed record (removes %d); want the node as it was", k.root, len(k.removed))
	}
}

func TestUnrecordedLayoutIsCleaned(t *testing.T) {
	c, k := newController(t, "htb") // ours, but the state file never heard of it
	st, err := c.Status(context.Background(), "enforce")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Unrecorded) == 0 || st.Unrecorded[0] != "lo" {
		t.Fatalf("Unrecorded = %v, want lo", st.Unrecorded)
	}
	if err := c.Unthrottle(context.Background(), "lo"); err != nil || k.root != "noqueue" {
		t.Fatalf("unthrottle of an unrecorded layout: %v, root %s", err, k.root)
	}
}

// TestReleaseNotRecordedIsNoSuccess: the layout is removed but the state file
// cannot be written (a full disk): Unthrottle reports ErrRecord, not success,
// and the record that still names the throttle is what a retry repairs.
func TestReleaseNotRecordedIsNoSuccess(t *testing.T) {
	c, k := newController(t, "noqueue")
	ctx := context.Background()
	if _, err := c.Install(ctx, Request{Spec: spec(1e6), Reason: policy.ReasonManual, Expires: c.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(c.Store.Path())
	if err != nil {
		t.Fatal(err)
	}
	k.onRemove = func() {
		os.Remove(c.Store.Path())
		if err := os.Mkdir(c.Store.Path(), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	err = c.Unthrottle(ctx, "lo")
	if !errors.Is(err, ErrRecord) || k.root != "noqueue" {
		t.Fatalf("Unthrottle with an unwritable record: %v (root %s); want ErrRecord with the layout gone", err, k.root)
	}
	// The disk frees up: the stale record is still there and a retry clears it.
	k.onRemove = nil
	os.Remove(c.Store.Path())
	if err := os.WriteFile(c.Store.Path(), saved, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Unthrottle(ctx, "lo"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if st, _ := c.Store.Load(); len(st.Mitigations) != 0 {
		t.Fatalf("after the retry the record still holds %+v", st.Mitigations)
	}
}

// TestUnreadableStateIsRebuiltFromTheKernel: a state file nobody can read
// is kept aside and the record rebuilt from the layouts the kernel holds, so
// status, throttle and unthrottle go on working.
func TestUnreadableStateIsRebuiltFromTheKernel(t *testing.T) {
	c, k := newController(t, "htb")
	k.rate = 1e6
	if err := os.WriteFile(c.Store.Path(), []byte(`{"version": 1, "mitig`), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(context.Background(), "enforce")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Mitigations) != 1 || st.Mitigations[0].Interface != "lo" || !st.Mitigations[0].Installed ||
		st.Mitigations[0].RateBps != 1e6 || st.Mitigations[0].Owners[0] != OwnerRecovered || len(st.Unrecorded) != 0 {
		t.Fatalf("status after an unreadable file: %+v", st)
	}
	kept, _ := filepath.Glob(c.Store.Path() + ".unreadable-*")
	if len(kept) != 1 {
		t.Fatalf("kept files: %v, want the unreadable file kept once", kept)
	}
	if err := c.Unthrottle(context.Background(), "lo"); err != nil || k.root != "noqueue" {
		t.Fatalf("unthrottle after recovery: %v, root %s", err, k.root)
	}
}
