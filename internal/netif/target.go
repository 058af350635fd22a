package netif

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// ErrNotTarget marks an interface egressguard refuses to throttle.
var ErrNotTarget = errors.New("not a throttle target")

// localOnlyReason says why an interface with these flags and link kind
// ("dummy", "veth", "" when the kernel names none) carries no traffic that
// leaves the node, or "" when it may. A loopback's packets never leave the
// node; a dummy device drops everything it is given.
func localOnlyReason(flags net.Flags, kind string) string {
	switch {
	case flags&net.FlagLoopback != 0:
		return "a loopback device: its traffic never leaves the node"
	case kind == "dummy":
		return "a dummy device: it sends nothing anywhere"
	}
	return ""
}

// checkTarget is CheckTarget once the interface's local-only reason (from
// the kernel) is known.
func checkTarget(name, localOnly string, watched []string) error {
	if localOnly != "" {
		return fmt.Errorf("%q: %w: %s", name, ErrNotTarget, localOnly)
	}
	return CheckWatched(name, watched)
}

// CheckWatched refuses a throttle on an interface that is not one of the
// watched ones (see CheckTarget); the agent, whose watched interfaces were
// checked for local-only devices when it started, needs no more.
func CheckWatched(name string, watched []string) error {
	if !slices.Contains(watched, name) {
		w := "none"
		if len(watched) > 0 {
			w = strings.Join(watched, ", ")
		}
		return fmt.Errorf("%q: %w: egressguard does not watch it (watched: %s)", name, ErrNotTarget, w)
	}
	return nil
}
