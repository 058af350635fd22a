package control

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/shaper"
)

// fakeKernel holds one interface's root: ours or the previous kind.
type fakeKernel struct {
	root    string // "htb" when ours
	removed []shaper.Previous
	onApply func() // runs after the kernel changed
}

func (k *fakeKernel) Apply(context.Context, shaper.Plan, shaper.ApplyOptions) (shaper.ApplyResult, error) {
	if k.onApply != nil {
		defer k.onApply()
	}
	if k.root == "htb" {
		return shaper.ApplyResult{Changed: true}, nil
	}
	prev := shaper.Previous{Kind: k.root}
	k.root = "htb"
	return shaper.ApplyResult{Previous: prev, Replaced: true, Changed: true}, nil
}

func (k *fakeKernel) Remove(_ context.Context, _ string, prev shaper.Previous) error {
	k.removed = append(k.removed, prev)
	k.root = prev.Kind
	if k.root == "" {
		k.root = "noqueue"
	}
	return nil
}

func (k *fakeKernel) Inspect(context.Context, string) (shaper.Installed, error) {
	return shaper.Installed{Ours: k.root == "htb", RootKind: k.root}, nil
}

func newController(t *testing.T, root string) (*Controller, *fakeKernel) {
	t.Helper()
	store, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKernel{root: root}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	return &Controller{Store: store, Kernel: k, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, k
}

// lo exists on every machine, so removal's interface check finds it.
func spec(rate uint64) shaper.Spec {
	return shaper.Spec{Interface: "lo", Rate: rate, Ports: []uint16{443}, Protocols: []string{"tcp"}}
}

func TestReapplyKeepsWhatWasReplaced(t *testing.T) {
	c, k := newController(t, "pfifo_fast")
	ctx := context.Background()
	exp := c.Now().Add(time.Hour)
	if _, err := c.Install(ctx, Request{Spec: spec(1e6), Reason: policy.ReasonManual, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Install(ctx, Request{Spec: spec(2e6), Reason: policy.ReasonWebhook, Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	if m.Previous.Kind != "pfifo_fast" || m.RateBps != 2e6 || len(m.Owners) != 2 {
		t.Fatalf("after an update: %+v; want previous pfifo_fast kept, new rate, both owners", m)
	}
	if err := c.Unthrottle(ctx, "lo"); err != nil {
		t.Fatal(err)
	}
	if k.root != "pfifo_fast" {
		t.Fatalf("root after unthrottle = %s, want pfifo_fast restored", k.root)
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
