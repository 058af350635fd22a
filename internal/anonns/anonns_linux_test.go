package anonns

import (
	"testing"

	"github.com/vishvananda/netns"

	eglab "github.com/egressguard/egressguard/internal/lab"
)

func TestNewLeavesThisNamespace(t *testing.T) {
	eglab.SkipUnlessRoot(t)
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	ns, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	after, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !after.Equal(before) {
		t.Errorf("this thread is in %s after New, was in %s", after, before)
	}
	if ns.Equal(before) {
		t.Errorf("New returned the current namespace %s", ns)
	}
}
