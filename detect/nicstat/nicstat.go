package nicstat

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// Rates is one interface's transmit over the interval since the previous
// Read that saw it; the detector divides the deltas by Interval.
type Rates struct {
	TxBytes, TxPackets uint64        // deltas over Interval
	Interval           time.Duration // time between the two readings
	// Reset is true when a counter went down since the previous reading (the
	// interface was recreated or its counters cleared): the deltas then count
	// from zero, a lower bound of what was sent.
	Reset bool
}

type counters struct {
	bytes, packets uint64
	index          int // ifindex; 0 when unknown
}

// Reader turns successive readings of /proc/net/dev into Rates. It is safe
// for concurrent use; each Read advances the one shared previous reading.
type Reader struct {
	fs      procfs.FS
	indexes func() (map[string]int, error)

	mu   sync.Mutex
	prev map[string]counters
	last time.Time
}

// New returns a Reader over the proc file system mounted at procRoot
// ("/proc" on a host; a fixture directory in tests). indexes returns the
// ifindex of every interface by name (netif.Indexes on a host): counters
// are followed by ifindex, so an interface that takes over a name (deleted
// and recreated, renamed, swapped) starts from a new baseline instead of
// producing a delta against another interface's counters. A nil indexes
// follows names alone.
func New(procRoot string, indexes func() (map[string]int, error)) (*Reader, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("nicstat: open proc at %s: %w", procRoot, err)
	}
	if indexes == nil {
		indexes = func() (map[string]int, error) { return nil, nil }
	}
	return &Reader{fs: fs, indexes: indexes}, nil
}

// Read reads the counters at time now and returns the rates of every
// interface that was also present at the previous Read. The first Read only
// records a baseline and returns an empty map; an interface that appears is
// reported from its second reading, one that vanishes is forgotten. now must
// be later than the previous Read's; if not, Read returns an error and keeps
// the previous reading.
func (r *Reader) Read(now time.Time) (map[string]Rates, error) {
	// /proc/net/dev has names only: read the indexes before and after it,
	// and leave out a name whose index changed in between.
	before, err := r.indexes()
	if err != nil {
		return nil, fmt.Errorf("nicstat: interface indexes: %w", err)
	}
	dev, err := r.fs.NetDev()
	if err != nil {
		return nil, fmt.Errorf("nicstat: read net/dev: %w", err)
	}
	after, err := r.indexes()
	if err != nil {
		return nil, fmt.Errorf("nicstat: interface indexes: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	elapsed := now.Sub(r.last)
	if r.prev != nil && elapsed <= 0 {
		return nil, fmt.Errorf("nicstat: read at %s is not after the previous read at %s",
			now.Format(time.RFC3339Nano), r.last.Format(time.RFC3339Nano))
	}
	out := make(map[string]Rates, len(dev))
	cur := make(map[string]counters, len(dev))
	for name, line := range dev {
		if before[name] != after[name] {
			continue // the name moved while being read: a baseline next time
		}
		c := counters{bytes: line.TxBytes, packets: line.TxPackets, index: after[name]}
		cur[name] = c
		p, ok := r.prev[name]
		if !ok || p.index != c.index {
			continue // new, or another interface under the same name
		}
		rt := Rates{Interval: elapsed}
		if c.bytes < p.bytes || c.packets < p.packets {
			// Not a wrap: /proc/net/dev counters are 64-bit, so going down means
			// they restarted from zero within the interval.
			rt.Reset = true
			rt.TxBytes, rt.TxPackets = c.bytes, c.packets
		} else {
			rt.TxBytes, rt.TxPackets = c.bytes-p.bytes, c.packets-p.packets
		}
		out[name] = rt
	}
	r.prev, r.last = cur, now
	return out, nil
}
