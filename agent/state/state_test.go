package state

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/egressguard/egressguard/agent/policy"
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
		Ports: []uint16{80, 443}, Protocols: []string{"tcp", "udp"}, RateBps: 1e6, Reason: policy.ReasonManual,
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
