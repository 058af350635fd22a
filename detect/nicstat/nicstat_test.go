package nicstat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// installStep copies testdata/stepN/net/dev into root, standing in for the
// kernel's counters at one moment.
func installStep(t *testing.T, root, step string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", step, "net", "dev"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "net", "dev"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadSequence(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		step string
		at   time.Time
		want map[string]Rates
	}{
		{step: "step0", at: t0, want: map[string]Rates{}},
		{step: "step1", at: t0.Add(time.Second), want: map[string]Rates{
			"lo":    {TxBytes: 100, TxPackets: 1, Interval: time.Second},
			"eth0":  {TxBytes: 1_250_000, TxPackets: 1000, Interval: time.Second},
			"veth1": {Interval: time.Second},
			// tap0 vanished; vnet3 is new, so neither has a rate yet.
		}},
		{step: "step2", at: t0.Add(2 * time.Second), want: map[string]Rates{
			"lo":    {Interval: time.Second},
			"eth0":  {TxBytes: 3000, TxPackets: 20, Interval: time.Second, Reset: true},
			"veth1": {Interval: time.Second},
			"vnet3": {TxBytes: 6000, TxPackets: 50, Interval: time.Second},
		}},
		{step: "step3", at: t0.Add(4 * time.Second), want: map[string]Rates{
			"lo":    {Interval: 2 * time.Second},
			"eth0":  {TxBytes: 2_000_000, TxPackets: 2000, Interval: 2 * time.Second},
			"veth1": {Interval: 2 * time.Second},
			"vnet3": {Interval: 2 * time.Second},
			"tap0":  {TxBytes: 1500, TxPackets: 1, Interval: 2 * time.Second},
		}},
	}
	r, err := New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		installStep(t, root, s.step)
		got, err := r.Read(s.at)
		if err != nil {
			t.Fatalf("%s: %v", s.step, err)
		}
		if len(got) != len(s.want) {
			t.Errorf("%s: got interfaces %v, want %v", s.step, got, s.want)
		}
		for name, w := range s.want {
			if g, ok := got[name]; !ok || g != w {
				t.Errorf("%s: %s = %+v, want %+v", s.step, name, g, w)
			}
		}
	}
}

func TestReadClockMustAdvance(t *testing.T) {
	r, err := New("testdata/step0", nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if _, err := r.Read(at); err != nil {
		t.Fatal(err)
	}
	for _, next := range []time.Time{at, at.Add(-time.Second)} {
		if _, err := r.Read(next); err == nil || !strings.Contains(err.Error(), "not after the previous read") {
			t.Fatalf("Read(%v) = %v, want an error about the clock", next, err)
		}
	}
	got, err := r.Read(at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got["eth0"] != (Rates{Interval: time.Second}) {
		t.Fatalf("eth0 after a refused read: %+v", got["eth0"])
	}
}

func TestReadErrors(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "absent"), nil); err == nil {
		t.Fatal("New on a missing directory succeeded")
	}
	r, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(time.Now()); err == nil || !strings.Contains(err.Error(), "nicstat: read net/dev") {
		t.Fatalf("Read without net/dev = %v", err)
	}
}

func TestReadHostProc(t *testing.T) {
	r, err := New("/proc", nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if _, err := r.Read(at); err != nil {
		t.Fatal(err)
	}
	got, err := r.Read(at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["lo"]; !ok {
		t.Fatalf("no rates for lo in %v", got)
	}
}

func BenchmarkRead(b *testing.B) {
	r, err := New("testdata/step3", nil)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Second)
		if _, err := r.Read(at); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCountersFollowTheIndex: two interfaces swap names between readings
// (in the incident: a bogus 23 Gbit/s interval): neither gets a rate from
// the other's counters, each starts a new baseline, and the next interval
// is measured again. A name that moves while being read is left out.
func TestCountersFollowTheIndex(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	idx := map[string]int{"lo": 1, "eth0": 2, "veth1": 3, "tap0": 4}
	var during map[string]int // the second call of a Read, when set
	calls := 0
	r, err := New(root, func() (map[string]int, error) {
		calls++
		if during != nil && calls%2 == 0 {
			return during, nil
		}
		return idx, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	installStep(t, root, "step0")
	if _, err := r.Read(t0); err != nil {
		t.Fatal(err)
	}
	idx = map[string]int{"lo": 1, "eth0": 3, "veth1": 2, "vnet3": 5} // eth0 and veth1 swapped
	installStep(t, root, "step1")
	got, err := r.Read(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"eth0", "veth1"} {
		if rt, ok := got[name]; ok {
			t.Errorf("%s after the swap: %+v, want no rate (another interface's counters)", name, rt)
		}
	}
	if _, ok := got["lo"]; !ok {
		t.Error("lo, whose index did not change, has no rate")
	}
	during = map[string]int{"lo": 1, "eth0": 3, "veth1": 7, "vnet3": 5} // veth1 replaced mid-read
	installStep(t, root, "step2")
	got, err = r.Read(t0.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["eth0"]; !ok {
		t.Error("eth0 has no rate an interval after the swap")
	}
	if rt, ok := got["veth1"]; ok {
		t.Errorf("veth1, replaced while being read: %+v, want no rate", rt)
	}
}
