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
	Previous  Previous // what Remove needs to restore the interface; valid when Installed
	Installed bool     // this call installed the layout afresh (else it updated ours or did nothing)
	Changed   bool     // Apply wrote to the kernel
	// ReleasedLegacy is true when Apply released the root-HTB throttle of an
	// earlier release: Previous then replaces the record's.
	ReleasedLegacy bool
}

// Previous is what an interface held before our layout, for Remove. It
// survives a JSON round trip. Kind, Handle and Options describe the root
// qdisc that the root-HTB layout of earlier releases replaced; state files
// of those releases hold them.
type Previous struct {
	Kind    string `json:"kind,omitempty"`    // e.g. "noqueue", "pfifo_fast", "mq", "tbf"
	Handle  uint32 `json:"handle,omitempty"`  // 0 = a handle the kernel picked
	Options []byte `json:"options,omitempty"` // the root's raw TCA_OPTIONS, to recreate it
	// CreatedClsact is true when Apply added the clsact qdisc: Remove deletes
	// it again once no filter is left on it.
	CreatedClsact bool `json:"created_clsact,omitempty"`
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
	Ours           bool   // our classifier or shaping device is there (or a legacy root)
	Legacy         bool   // the root qdisc is the root-HTB layout of an earlier release
	RootKind       string // kind of the interface's root qdisc, never touched by the clsact layout
	Hook           Hook   // where our classifier sits ("" when absent)
	Device         string // the shaping device, when present
	LeafKind       string // kind of the throttled class's leaf
	Rate           uint64 // bits/s of the throttled class
	ThrottledStats ClassStats
}
