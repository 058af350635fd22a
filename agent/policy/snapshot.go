package policy

import (
	"slices"
	"time"
)

// Snapshot is an Engine's whole state at one moment: its mitigations,
// flood episodes and action budget.
type Snapshot struct {
	mits     map[string]*mitigation
	episodes map[string]*episode
	actions  []time.Time
}

// Snapshot copies the Engine's state so that RestoreInterface can undo a
// decision the kernel then refused.
func (e *Engine) Snapshot() Snapshot {
	return Snapshot{mits: e.mits, episodes: e.episodes, actions: e.actions}.copy()
}

// copy is a deep copy of s.
func (s Snapshot) copy() Snapshot {
	c := Snapshot{mits: make(map[string]*mitigation, len(s.mits)), episodes: make(map[string]*episode, len(s.episodes)), actions: slices.Clone(s.actions)}
	for k, m := range s.mits {
		c.mits[k] = &mitigation{iface: m.iface, since: m.since, claims: slices.Clone(m.claims)}
	}
	for k, ep := range s.episodes {
		cp := *ep
		c.episodes[k] = &cp
	}
	return c
}

// RestoreInterface puts iface's mitigation and flood episode back as they
// were at s, after the kernel refused a decision on it, and gives back the
// budget that decision spent; other interfaces keep what was decided since.
// The detector, if still in flood, tries again on its next interval.
func (e *Engine) RestoreInterface(s Snapshot, iface string) {
	if m := s.mits[iface]; m != nil {
		e.mits[iface] = &mitigation{iface: m.iface, since: m.since, claims: slices.Clone(m.claims)}
	} else {
		delete(e.mits, iface)
	}
	for _, key := range []string{iface, portEpisode(iface)} {
		if ep := s.episodes[key]; ep != nil {
			cp := *ep
			e.episodes[key] = &cp
		} else {
			delete(e.episodes, key)
		}
	}
	if len(e.actions) > len(s.actions) {
		e.actions = e.actions[:len(e.actions)-1]
	}
}
