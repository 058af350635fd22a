package alerts

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// LedgerEntry is what a Ledger knows about one alert fingerprint.
type LedgerEntry struct {
	Mitigations []string  `json:"mitigations"` // ids of the mitigations this fingerprint created
	Firing      bool      `json:"firing"`      // false once resolved
	Seen        time.Time `json:"seen"`        // last firing or resolution
}

// Ledger remembers, per alert fingerprint, the mitigations a webhook alert
// created, so that a repeated firing renews them instead of creating more, and
// a resolution releases exactly those and nothing the detector or an operator
// installed. Entries not seen for the TTL are forgotten: use the mitigations'
// own TTL, so that an entry lapses when its mitigations expire. It is safe for
// concurrent use.
type Ledger struct {
	mu      sync.Mutex
	ttl     time.Duration
	now     func() time.Time
	entries map[string]LedgerEntry
}

// NewLedger returns an empty Ledger whose entries lapse after ttl.
func NewLedger(ttl time.Duration, now func() time.Time) (*Ledger, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("alerts: ledger ttl %v: want more than 0", ttl)
	}
	if now == nil {
		return nil, fmt.Errorf("alerts: ledger clock: nil, want a clock")
	}
	return &Ledger{ttl: ttl, now: now, entries: map[string]LedgerEntry{}}, nil
}

// Fire records a firing of fingerprint. If it is already firing, Fire renews
// the entry and returns its mitigations with renewed true: the caller extends
// their TTL. Otherwise Fire calls create, which installs the mitigations and
// returns the ids of those it created (none when they already existed from
// another source), records them and returns them. create runs under the
// Ledger's lock, so that concurrent deliveries of one alert create once; it must
// not call the Ledger. A create error records nothing.
func (l *Ledger) Fire(fingerprint string, create func() ([]string, error)) (ids []string, renewed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.prune()
	if e, ok := l.entries[fingerprint]; ok && e.Firing {
		e.Seen = now
		l.entries[fingerprint] = e
		return slices.Clone(e.Mitigations), true, nil
	}
	ids, err = create()
	if err != nil {
		return nil, false, err
	}
	l.entries[fingerprint] = LedgerEntry{Mitigations: slices.Clone(ids), Firing: true, Seen: now}
	return ids, false, nil
}

// Resolve records the resolution of fingerprint and returns the mitigations it
// created, for the caller to release. A fingerprint that is unknown, lapsed or
// already resolved returns none: a repeated resolution releases nothing.
func (l *Ledger) Resolve(fingerprint string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.prune()
	e, ok := l.entries[fingerprint]
	if !ok || !e.Firing {
		return nil
	}
	ids := e.Mitigations
	l.entries[fingerprint] = LedgerEntry{Seen: now}
	return slices.Clone(ids)
}

// Snapshot returns a copy of the entries, fingerprint → entry, for the agent's
// state file.
func (l *Ledger) Snapshot() map[string]LedgerEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune()
	return cloneEntries(l.entries)
}

// Restore replaces the entries with a Snapshot, after a restart.
func (l *Ledger) Restore(entries map[string]LedgerEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = cloneEntries(entries)
	l.prune()
}

// cloneEntries copies entries deeply enough that neither copy sees the other's changes.
func cloneEntries(entries map[string]LedgerEntry) map[string]LedgerEntry {
	out := make(map[string]LedgerEntry, len(entries))
	for fp, e := range entries {
		e.Mitigations = slices.Clone(e.Mitigations)
		out[fp] = e
	}
	return out
}

// prune forgets the entries not seen for the TTL and returns the time it used.
// The caller holds l.mu.
func (l *Ledger) prune() time.Time {
	now := l.now()
	for fp, e := range l.entries {
		if now.Sub(e.Seen) >= l.ttl {
			delete(l.entries, fp)
		}
	}
	return now
}
