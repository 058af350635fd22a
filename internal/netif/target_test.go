package netif

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestCheckTarget(t *testing.T) {
	watched := []string{"eth0", "eth1"}
	for _, tt := range []struct {
		name  string
		flags net.Flags
		kind  string
		want  string // "" = accepted, else a part of the error
	}{
		{"eth0", net.FlagUp | net.FlagBroadcast, "", ""},
		{"eth1", net.FlagUp, "veth", ""},
		{"lo", net.FlagUp | net.FlagLoopback, "", "loopback"},
		{"eth0", net.FlagLoopback, "", "loopback"}, // the flag decides, not the name
		{"dum0", net.FlagUp, "dummy", "dummy"},
		{"br0", net.FlagUp, "bridge", "does not watch it (watched: eth0, eth1)"},
	} {
		err := checkTarget(tt.name, localOnlyReason(tt.flags, tt.kind), watched)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s (%v, %q): refused: %v", tt.name, tt.flags, tt.kind, err)
		case tt.want != "" && (err == nil || !errors.Is(err, ErrNotTarget) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s (%v, %q): %v, want ErrNotTarget saying %q", tt.name, tt.flags, tt.kind, err, tt.want)
		}
	}
	if err := checkTarget("eth0", "", nil); err == nil || !strings.Contains(err.Error(), "watched: none") {
		t.Errorf("nothing watched: %v", err)
	}
}
