package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/shaper"
)

// FileName is the state file inside the state directory.
const FileName = "state.json"

// lockName is the lock file inside the state directory.
const lockName = "state.lock"

// version is the format of the state file; a file of a newer format is
// refused rather than half understood.
const version = 1

// Mitigation is one throttle installed on one interface, with what it
// replaced so that removal restores the interface exactly.
type Mitigation struct {
	Interface string             `json:"interface"`
	Scope     shaper.Scope       `json:"scope"`
	Sources   []netip.Prefix     `json:"sources"`
	Ports     []shaper.PortRange `json:"ports"`
	Protocols []string           `json:"protocols"`
	RateBps   uint64             `json:"rate_bps"`
	Reason    policy.Reason      `json:"reason"`
	// Owners are the requests holding the mitigation (a webhook alert's
	// fingerprint, "detector", "manual"); it is released when none is left.
	Owners   []string        `json:"owners,omitempty"`
	Since    time.Time       `json:"since"`
	Expires  time.Time       `json:"expires"`
	Previous shaper.Previous `json:"previous"`
	Warnings []string        `json:"warnings,omitempty"`
}

// Expired reports whether the mitigation's TTL has run out at now.
func (m Mitigation) Expired(now time.Time) bool { return !m.Expires.After(now) }

// State is the content of the state file.
type State struct {
	Version     int          `json:"version"`
	Mitigations []Mitigation `json:"mitigations"`
}

// Find returns the mitigation on iface, if any.
func (s *State) Find(iface string) (Mitigation, bool) {
	i := slices.IndexFunc(s.Mitigations, func(m Mitigation) bool { return m.Interface == iface })
	if i < 0 {
		return Mitigation{}, false
	}
	return s.Mitigations[i], true
}

// Put records m, replacing any mitigation on the same interface.
func (s *State) Put(m Mitigation) {
	s.Delete(m.Interface)
	s.Mitigations = append(s.Mitigations, m)
	slices.SortFunc(s.Mitigations, func(a, b Mitigation) int {
		switch {
		case a.Interface < b.Interface:
			return -1
		case a.Interface > b.Interface:
			return 1
		}
		return 0
	})
}

// Delete forgets the mitigation on iface.
func (s *State) Delete(iface string) {
	s.Mitigations = slices.DeleteFunc(s.Mitigations, func(m Mitigation) bool { return m.Interface == iface })
}

// Store reads and writes the state file in one directory.
type Store struct {
	dir string
}

// Open returns the store in dir, creating the directory (mode 0700) if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: create %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Path is the state file's path.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

// ErrUnreadable marks a state file that exists but cannot be understood:
// empty, truncated, not JSON, fields of the wrong type, a newer format, a
// record without an interface, or not a regular file. MoveAside keeps it for
// the operator so that a new record can be written.
var ErrUnreadable = errors.New("state file unreadable")

// Load reads the state file; a missing file is an empty state. A file that
// exists but cannot be understood is an error wrapping ErrUnreadable.
func (s *Store) Load() (State, error) {
	b, err := os.ReadFile(s.Path())
	if errors.Is(err, os.ErrNotExist) {
		return State{Version: version}, nil
	}
	if errors.Is(err, syscall.EISDIR) {
		return State{}, fmt.Errorf("state: %s is a directory: %w", s.Path(), ErrUnreadable)
	}
	if err != nil {
		return State{}, fmt.Errorf("state: read: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("state: parse %s: %w: %w", s.Path(), ErrUnreadable, err)
	}
	if st.Version < 1 || st.Version > version {
		return State{}, fmt.Errorf("state: %s has format %d, this egressguard reads 1 to %d: %w", s.Path(), st.Version, version, ErrUnreadable)
	}
	seen := map[string]bool{}
	for i, m := range st.Mitigations {
		if m.Interface == "" || seen[m.Interface] {
			return State{}, fmt.Errorf("state: %s mitigations[%d].interface %q: empty or recorded twice: %w", s.Path(), i, m.Interface, ErrUnreadable)
		}
		seen[m.Interface] = true
	}
	return st, nil
}

// MoveAside renames an unreadable state file (or whatever holds its name) to
// state.json.unreadable-<unix seconds> in the same directory, kept for the
// operator, and returns the new path. Call it under Lock.
func (s *Store) MoveAside(now time.Time) (string, error) {
	to := fmt.Sprintf("%s.unreadable-%d", s.Path(), now.Unix())
	if err := os.Rename(s.Path(), to); err != nil {
		return "", fmt.Errorf("state: move aside: %w", err)
	}
	return to, nil
}

// Clamp bounds a record written under a wrong clock (a node whose RTC ran
// fast or slow): Since is at most now, and Expires at most now+maxTTL. It
// reports whether anything changed.
func (m Mitigation) Clamp(now time.Time, maxTTL time.Duration) (Mitigation, bool) {
	changed := false
	if m.Since.After(now) {
		m.Since, changed = now, true
	}
	if limit := now.Add(maxTTL); m.Expires.After(limit) {
		m.Expires, changed = limit, true
	}
	return m, changed
}

// Save writes st atomically: a crash leaves the old file or the new one.
func (s *Store) Save(st State) error {
	st.Version = version
	if st.Mitigations == nil {
		st.Mitigations = []Mitigation{}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encode: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, FileName+".tmp*")
	if err != nil {
		return fmt.Errorf("state: create temp: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("state: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), s.Path()); err != nil {
		return fmt.Errorf("state: rename: %w", err)
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("state: open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state: fsync dir %s: %w", s.dir, err)
	}
	return nil
}
