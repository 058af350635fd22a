package alerts

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestLedger(t *testing.T) (*Ledger, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	l, err := NewLedger(30*time.Minute, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

func TestLedgerLifecycle(t *testing.T) {
	l, clock := newTestLedger(t)
	creates := 0
	create := func(ids ...string) func() ([]string, error) {
		return func() ([]string, error) { creates++; return ids, nil }
	}
	type step struct {
		name        string
		do          func() ([]string, bool)
		wantIDs     []string
		wantRenewed bool
		wantCreates int
	}
	fire := func(fp string, ids ...string) func() ([]string, bool) {
		return func() ([]string, bool) {
			got, renewed, err := l.Fire(fp, create(ids...))
			if err != nil {
				t.Fatal(err)
			}
			return got, renewed
		}
	}
	resolve := func(fp string) func() ([]string, bool) {
		return func() ([]string, bool) { return l.Resolve(fp), false }
	}
	wait := func(d time.Duration, f func() ([]string, bool)) func() ([]string, bool) {
		return func() ([]string, bool) { clock.t = clock.t.Add(d); return f() }
	}
	for _, s := range []step{
		{"first firing creates", fire("a", "m1", "m2"), []string{"m1", "m2"}, false, 1},
		{"repeat renews", wait(10*time.Minute, fire("a", "x")), []string{"m1", "m2"}, true, 1},
		{"repeat 29m later still renews", wait(29*time.Minute, fire("a", "x")), []string{"m1", "m2"}, true, 1},
		{"unknown fingerprint releases nothing", resolve("zzz"), nil, false, 1},
		{"detector's mitigation: created nothing", fire("b"), nil, false, 2},
		{"its resolution releases nothing", resolve("b"), nil, false, 2},
		{"resolution releases what a created", resolve("a"), []string{"m1", "m2"}, false, 2},
		{"repeated resolution releases nothing", resolve("a"), nil, false, 2},
		{"firing again after resolution creates", fire("a", "m3"), []string{"m3"}, false, 3},
		{"lapsed after the TTL: creates anew", wait(30*time.Minute, fire("a", "m4")), []string{"m4"}, false, 4},
		{"lapsed entry releases nothing", wait(31*time.Minute, resolve("a")), nil, false, 4},
	} {
		ids, renewed := s.do()
		if !reflect.DeepEqual(ids, s.wantIDs) || renewed != s.wantRenewed || creates != s.wantCreates {
			t.Errorf("%s: ids %v renewed %v creates %d, want %v %v %d", s.name, ids, renewed, creates, s.wantIDs, s.wantRenewed, s.wantCreates)
		}
	}
}

func TestLedgerCreateErrorRecordsNothing(t *testing.T) {
	l, _ := newTestLedger(t)
	boom := errors.New("shaper: busy")
	if _, _, err := l.Fire("a", func() ([]string, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Fire error %v", err)
	}
	ids, renewed, err := l.Fire("a", func() ([]string, error) { return []string{"m1"}, nil })
	if err != nil || renewed || !reflect.DeepEqual(ids, []string{"m1"}) {
		t.Errorf("retry after error: %v %v %v", ids, renewed, err)
	}
}

// Concurrent deliveries of one alert (an Alertmanager retry racing the first
// attempt) create once.
func TestLedgerConcurrentFiringCreatesOnce(t *testing.T) {
	l, _ := newTestLedger(t)
	var mu sync.Mutex
	creates := 0
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _ = l.Fire("a", func() ([]string, error) {
				mu.Lock()
				defer mu.Unlock()
				creates++
				return []string{fmt.Sprint("m", creates)}, nil
			})
		}()
	}
	wg.Wait()
	if creates != 1 {
		t.Errorf("%d creates, want 1", creates)
	}
}

func TestLedgerSnapshotRestore(t *testing.T) {
	l, clock := newTestLedger(t)
	_, _, _ = l.Fire("a", func() ([]string, error) { return []string{"m1"}, nil })
	_, _, _ = l.Fire("b", func() ([]string, error) { return []string{"m2"}, nil })
	l.Resolve("b")
	snap := l.Snapshot()
	want := map[string]LedgerEntry{
		"a": {Mitigations: []string{"m1"}, Firing: true, Seen: clock.t},
		"b": {Seen: clock.t},
	}
	if !reflect.DeepEqual(snap, want) {
		t.Fatalf("Snapshot = %+v, want %+v", snap, want)
	}
	snap["a"].Mitigations[0] = "changed"

	restarted, _ := NewLedger(30*time.Minute, clock.now)
	restarted.Restore(l.Snapshot())
	if ids := restarted.Resolve("a"); !reflect.DeepEqual(ids, []string{"m1"}) {
		t.Errorf("after Restore, Resolve(a) = %v, want [m1]", ids)
	}
}

func TestNewLedgerValidates(t *testing.T) {
	if _, err := NewLedger(0, time.Now); err == nil || err.Error() != "alerts: ledger ttl 0s: want more than 0" {
		t.Errorf("ttl 0: %v", err)
	}
	if _, err := NewLedger(time.Minute, nil); err == nil || err.Error() != "alerts: ledger clock: nil, want a clock" {
		t.Errorf("nil clock: %v", err)
	}
}
