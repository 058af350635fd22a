package detect

import (
	"testing"
	"time"
)

func TestHysteresisStep(t *testing.T) {
	t0 := time.Unix(0, 0)
	h := hysteresis{state: StateClean, since: t0}
	// enter 2, exit 3: S S enters, then C C holds, C leaves.
	steps := []struct {
		suspect, floodNow, attend bool
		want                      State
		why                       bool
	}{
		{attend: true, want: StateAttention},
		{want: StateClean},
		{suspect: true, want: StateAttention, why: true},
		{suspect: true, want: StateFlood},
		{want: StateFlood, why: true},
		{want: StateFlood, why: true},
		{suspect: true, want: StateFlood}, // a suspect step resets the clean run
		{want: StateFlood, why: true},
		{want: StateFlood, why: true},
		{want: StateClean},
		{floodNow: true, want: StateFlood},
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i+1) * time.Second)
		before := h.state
		got, why := h.step(at, s.suspect, s.floodNow, s.attend, 2, 3, "ticks")
		if got != s.want || (why != "") != s.why {
			t.Fatalf("step %d: got %s %q, want %s (reason %v)", i, got, why, s.want, s.why)
		}
		if got != before && !h.since.Equal(at) {
			t.Errorf("step %d: since %v, want %v on a change of state", i, h.since, at)
		}
	}
}
