package detect

import (
	"fmt"
	"time"
)

// hysteresis is the state machine both detectors run, per interface and per
// key: a suspect step counts towards entering flood, a clean step while in
// flood counts towards leaving it, and any other step resets the run it
// breaks. Entering after enter consecutive suspect steps and leaving after
// exit consecutive clean ones is the usual debounce of rate-based alarms
// (FastNetMon's ban/unban, Prometheus's `for:`), so that one noisy window
// neither throttles nor releases.
type hysteresis struct {
	state      State
	since      time.Time
	suspectRun int // consecutive suspect steps
	cleanRun   int // consecutive non-suspect steps while in flood
}

// step folds one step taken at now and returns the next state and, when
// hysteresis alone holds or withholds the flood state, the reason in words
// ("" otherwise). enter and exit are the runs needed (steps); unit names a
// step in those words ("intervals", "ticks"). floodNow enters flood at once
// (a verdict that has passed its own hysteresis elsewhere); attend makes a
// step that is neither suspect nor flood read as attention.
func (h *hysteresis) step(now time.Time, suspect, floodNow, attend bool, enter, exit int, unit string) (State, string) {
	if suspect {
		h.suspectRun++
		h.cleanRun = 0
	} else {
		h.suspectRun = 0
		if h.state == StateFlood {
			h.cleanRun++
		}
	}
	next, why := StateClean, ""
	switch {
	case h.state == StateFlood && (suspect || h.cleanRun < exit):
		next = StateFlood
		if !suspect {
			why = fmt.Sprintf("flood continues: %d of %d clean %s to exit", h.cleanRun, exit, unit)
		}
	case h.state != StateFlood && (h.suspectRun >= enter || floodNow):
		next = StateFlood
	case suspect:
		next = StateAttention
		why = fmt.Sprintf("suspect for %d of %d %s needed", h.suspectRun, enter, unit)
	case attend:
		next = StateAttention
	}
	if next != h.state {
		h.state, h.since = next, now
		h.cleanRun = 0
	}
	return next, why
}
