package shaper

import (
	"errors"
	"log/slog"
)

// ErrForeign is wrapped in the errors that refuse to touch an object
// egressguard did not create: a filter at our prio on the classifying hook,
// a device with the shaping device's name but not our alias, or an ingress
// qdisc where the egress hook is needed.
var ErrForeign = errors.New("object is not egressguard's")

// Options configure Open.
type Options struct {
	NetNS  int          // file descriptor of the network namespace; 0 = the current one
	Logger *slog.Logger // nil = discard
}

// ApplyOptions carry what the record of an earlier release says.
type ApplyOptions struct {
	// Legacy is the record of a root-HTB throttle installed by a release
	// before the clsact layout: when that root is still on the interface,
	// Apply installs the new layout, then restores the root qdisc Legacy
	// names (the kernel default when empty).
	Legacy Previous
}

// ApplyResult says what Apply did.
type ApplyResult struct {
	Installed bool // this call installed the layout afresh (else it updated ours or did nothing)
	Changed   bool // Apply wrote to the kernel
	// ReleasedLegacy is true when Apply released the root-HTB throttle of an
	// earlier release: the record's Previous has served and can go.
	ReleasedLegacy bool
}

// Previous is the root qdisc that the root-HTB layout of earlier releases
// replaced, as their state files recorded it, for Remove (and Apply) to
// restore. The clsact layout replaces nothing: what it must undo is
// recorded on its shaping device (see ShapingAlias), so a crash between a
// kernel write and the state file loses nothing. It survives a JSON round
// trip.
type Previous struct {
	Kind    string `json:"kind,omitempty"`    // e.g. "noqueue", "pfifo_fast", "mq", "tbf"
	Handle  uint32 `json:"handle,omitempty"`  // 0 = a handle the kernel picked
	Options []byte `json:"options,omitempty"` // the root's raw TCA_OPTIONS, to recreate it
}

// ClassStats are the counters of one htb class.
type ClassStats struct {
	Bytes      uint64 `json:"bytes"`
	Packets    uint64 `json:"packets"`
	Drops      uint64 `json:"drops"`
	Overlimits uint64 `json:"overlimits"`
}

// Installed is what Inspect found for an interface.
type Installed struct {
	Ours           bool   // some piece of our layout is there: classifier, shaping device, or a legacy root
	Intact         bool   // the shaping device and the classifier are both there
	Legacy         bool   // the root qdisc is the root-HTB layout of an earlier release
	RootKind       string // kind of the interface's root qdisc, never touched by the clsact layout
	Hook           Hook   // where our classifier sits ("" when absent)
	Device         string // the shaping device, when present
	LeafKind       string // kind of the throttled class's leaf
	Rate           uint64 // bits/s of the throttled class
	ThrottledStats ClassStats
}
