package anonns

import (
	"os"
	"testing"

	"github.com/vishvananda/netns"
)

func TestNewLeavesThisNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create a network namespace")
	}
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
