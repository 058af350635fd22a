package state

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/shaper"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Load()
	if err != nil || len(st.Mitigations) != 0 {
		t.Fatalf("empty store: %+v, %v", st, err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	m := Mitigation{
		Interface: "eth0", Scope: "source", Sources: []netip.Prefix{netip.MustParsePrefix("198.18.0.7/32")},
		Ports: shaper.Ports(80, 443), Protocols: []string{"tcp", "udp"}, RateBps: 1e6, Reason: policy.ReasonManual,
		Since: now, Expires: now.Add(30 * time.Minute),
	}
	st.Put(m)
	st.Put(Mitigation{Interface: "bond0", Reason: policy.ReasonDetector})
	st.Put(m) // replaces, never duplicates
	if err := s.Save(st); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Mitigations) != 2 || got.Mitigations[0].Interface != "bond0" {
		t.Fatalf("mitigations = %+v", got.Mitigations)
	}
	g, ok := got.Find("eth0")
	if !ok || g.Sources[0] != m.Sources[0] || !g.Expires.Equal(m.Expires) || g.Expired(now) || !g.Expired(now.Add(time.Hour)) {
		t.Fatalf("eth0 = %+v", g)
	}
	got.Delete("eth0")
	if _, ok := got.Find("eth0"); ok {
		t.Fatal("Delete left eth0")
	}
	entries, _ := os.ReadDir(filepath.Dir(s.Path()))
	for _, e := range entries {
		if e.Name() != FileName {
			t.Errorf("leftover file %s after Save", e.Name())
		}
	}
}

func TestLoadRejectsNewerFormatAndGarbage(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, body := range []string{`{"version": 99, "mitigations": []}`, `{not json`} {
		if err := os.WriteFile(s.Path(), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(); err == nil {
			t.Errorf("Load(%s) accepted", body)
		}
	}
}

func TestLockSerialises(t *testing.T) {
	s, _ := Open(t.TempDir())
	unlock, err := s.Lock()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		u, err := s.Lock()
		if err == nil {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second Lock did not wait for the first")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	<-got
}

// TestUnreadableFilesAreRecognisedAndMovedAside holds the kinds of state file
// a crash, a full disk, an editor or a newer release leaves behind: each is
// ErrUnreadable, and MoveAside keeps it under a new name so the next Save
// writes a fresh record.
func TestUnreadableFilesAreRecognisedAndMovedAside(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for name, write := range map[string]func(path string) error{
		"empty":      func(p string) error { return os.WriteFile(p, nil, 0o600) },
		"half json":  func(p string) error { return os.WriteFile(p, []byte(`{"version": 1, "mitigations": [{"interf`), 0o600) },
		"random":     func(p string) error { return os.WriteFile(p, []byte("\x8f\x00\xffq\x12"), 0o600) },
		"newer":      func(p string) error { return os.WriteFile(p, []byte(`{"version": 2, "mitigations": []}`), 0o600) },
		"no version": func(p string) error { return os.WriteFile(p, []byte(`{}`), 0o600) },
		"wrong types": func(p string) error {
			return os.WriteFile(p, []byte(`{"version": "1", "mitigations": {"a": 1}}`), 0o600)
		},
		"no interface": func(p string) error {
			return os.WriteFile(p, []byte(`{"version": 1, "mitigations": [{"rate_bps": 5}]}`), 0o600)
		},
		"twice": func(p string) error {
			return os.WriteFile(p, []byte(`{"version": 1, "mitigations": [{"interface": "a"}, {"interface": "a"}]}`), 0o600)
		},
		"directory": func(p string) error { return os.Mkdir(p, 0o700) },
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := Open(t.TempDir())
			if err := write(s.Path()); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Load(); !errors.Is(err, ErrUnreadable) {
				t.Fatalf("Load: %v, want ErrUnreadable", err)
			}
			aside, err := s.MoveAside(now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(aside); err != nil {
				t.Fatalf("the unreadable file was not kept: %v", err)
			}
			if st, err := s.Load(); err != nil || len(st.Mitigations) != 0 {
				t.Fatalf("after MoveAside: %+v, %v; want an empty state", st, err)
			}
			if err := s.Save(State{}); err != nil {
				t.Fatalf("Save after MoveAside: %v", err)
			}
		})
	}
}

func TestClampBoundsAWrongClock(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ahead := now.AddDate(4, 0, 0)
	m, changed := Mitigation{Since: ahead, Expires: ahead.Add(time.Hour)}.Clamp(now, 24*time.Hour)
	if !changed || !m.Since.Equal(now) || !m.Expires.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("clamp of a record four years ahead: %+v, changed %v", m, changed)
	}
	ok := Mitigation{Since: now.Add(-time.Hour), Expires: now.Add(time.Hour)}
	if m, changed := ok.Clamp(now, 24*time.Hour); changed || m.Since != ok.Since || m.Expires != ok.Expires {
		t.Fatalf("a sane record changed: %+v", m)
	}
}

func TestHoldForAgentNamesTheHolder(t *testing.T) {
	s, _ := Open(t.TempDir())
	release, err := s.HoldForAgent()
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description conflicts as a second process would.
	_, err = s.HoldForAgent()
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second hold: %v; want ErrHeld naming pid %d", err, os.Getpid())
	}
	release()
	again, err := s.HoldForAgent()
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}
