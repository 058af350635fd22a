package main

import (
	"slices"
	"testing"
)

func TestExpand(t *testing.T) {
	groups := map[string][]string{
		"@a": {"read", "@b"},
		"@b": {"write", "@a"}, // cycles end
		"@c": {"chroot"},
	}
	got := expand([]string{"@a", "close"}, groups)
	slices.Sort(got)
	if want := []string{"close", "read", "write"}; !slices.Equal(got, want) {
		t.Errorf("expand = %v, want %v", got, want)
	}
}

func TestUnitFilter(t *testing.T) {
	allow, deny, err := unitFilter("../../packaging/egressguard.service")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(allow, []string{"@system-service"}) || !slices.Equal(deny, []string{"@privileged", "@resources"}) {
		t.Errorf("allow %v deny %v: not the packaged unit's filter", allow, deny)
	}
}
