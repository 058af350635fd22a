package shaper

import (
	"errors"
	"log/slog"
)

// ErrForeignRoot is wrapped in the error that refuses to replace a root
// qdisc that is neither a kernel default nor ours; the error names the
// interface and the qdisc kind.
var ErrForeignRoot = errors.New("root qdisc is not a kernel default and not ours")

// Options configure Open.
type Options struct {
	NetNS  int          // file descriptor of the network namespace; 0 = the current one
	Logger *slog.Logger // nil = discard
}

// ApplyOptions change how Apply treats the existing root qdisc.
type ApplyOptions struct {
	Force bool // replace a foreign root qdisc (it is restored by Remove without its classes and filters)
}

// ApplyResult says what Apply did.
type ApplyResult struct {
	Previous Previous // the root qdisc Apply replaced; valid when Replaced
	Replaced bool     // a default or forced foreign root was replaced; false when the root was already ours
	Changed  bool     // Apply wrote to the kernel
}

// Previous is what the root qdisc of an interface was before Apply replaced
// it: enough for Remove to restore it. It survives a JSON round trip.
type Previous struct {
	Kind    string `json:"kind"`              // e.g. "noqueue", "pfifo_fast", "mq", "tbf"
	Handle  uint32 `json:"handle"`            // 0 = a handle the kernel picked
	Options []byte `json:"options,omitempty"` // the root's raw TCA_OPTIONS, to recreate it
}

// ClassStats are the counters of one htb class.
type ClassStats struct {
	Bytes      uint64 `json:"bytes"`
	Packets    uint64 `json:"packets"`
	Drops      uint64 `json:"drops"`
	Overlimits uint64 `json:"overlimits"`
}

// Installed is what Inspect found on an interface.
type Installed struct {
	Ours           bool   // the root is our e9: htb
	RootKind       string // kind of the root qdisc, ours or not
	LeafKind       string // kind of the leaf under the throttled class ("" when not ours)
	Rate           uint64 // bits/s of the throttled class
	Filters        int    // u32 filters under our root
	ThrottledStats ClassStats
	OtherStats     ClassStats
}

// IsKernelDefaultRoot reports whether kind is a root qdisc the kernel
// attaches by itself (noqueue, pfifo_fast, mq, fq_codel, fq), which Apply may
// replace and Remove restores; any other root is foreign.
func IsKernelDefaultRoot(kind string) bool {
	switch kind {
	case "noqueue", "pfifo_fast", "mq", "fq_codel", "fq":
		return true
	}
	return false
}
