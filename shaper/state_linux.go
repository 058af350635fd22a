package shaper

import (
	"context"
	"fmt"
	"slices"

	tc "github.com/florianl/go-tc"
	"golang.org/x/sys/unix"
)

// kernelState is what the kernel holds under our root on one interface.
type kernelState struct {
	root    rawQdisc
	leaves  map[Handle]rawQdisc // by parent class
	classes map[Handle]classWire
	stats   map[Handle]ClassStats
	filters []filterWire // absolute prios, dump order
}

func bandPrios() []uint16 {
	return []uint16{PrioWhitelistIPv4, PrioWhitelistIPv6, PrioThrottleIPv4, PrioThrottleIPv6}
}

// bandOf returns the band of an absolute prio, or false outside our bands.
func bandOf(prio uint16) (uint16, bool) {
	for band := range uint16(2) {
		if slices.Contains(bandPrios(), prio-band*bandOffset) {
			return band, true
		}
	}
	return 0, false
}

// band returns the filters of one band with band-0 prios.
func (st kernelState) band(band uint16) []filterWire {
	var out []filterWire
	for _, f := range st.filters {
		if b, ok := bandOf(f.Prio); ok && b == band {
			f.Prio -= band * bandOffset
			out = append(out, f)
		}
	}
	return out
}

// filterBands returns the band in effect (the lowest present) and all bands present.
func (st kernelState) filterBands() (active uint16, present []uint16) {
	for band := range uint16(2) {
		if len(st.band(band)) > 0 {
			present = append(present, band)
		}
	}
	if len(present) > 0 {
		active = present[0]
	}
	return active, present
}

func (s *Shaper) readState(idx uint32) (kernelState, error) {
	st := kernelState{leaves: map[Handle]rawQdisc{}, classes: map[Handle]classWire{}, stats: map[Handle]ClassStats{}}
	qs, err := s.qdiscs(idx)
	if err != nil {
		return st, err
	}
	for _, q := range qs {
		switch {
		case q.Parent == HandleRoot:
			st.root = q
		case q.Parent>>16 == RootHandle>>16:
			st.leaves[q.Parent] = q
		}
	}
	if !ours(st.root) {
		return st, nil
	}
	classes, err := s.tc.Class().Get(&tc.Msg{Family: unix.AF_UNSPEC, Ifindex: idx})
	if err != nil {
		return st, fmt.Errorf("shaper: dump classes: %w", err)
	}
	for _, o := range classes {
		if c, stats, ok := decodeClass(o); ok && c.ClassID>>16 == RootHandle>>16 {
			st.classes[c.ClassID], st.stats[c.ClassID] = c, stats
		}
	}
	filters, err := s.tc.Filter().Get(&tc.Msg{Family: unix.AF_UNSPEC, Ifindex: idx, Parent: uint32(RootHandle)})
	if err != nil {
		return st, fmt.Errorf("shaper: dump filters: %w", err)
	}
	for _, o := range filters {
		if f, ok := decodeFilter(o); ok {
			st.filters = append(st.filters, f)
		}
	}
	return st, nil
}

// Inspect reports whether iface's root is ours, its kind, and the rate,
// leaf and counters of the throttled class.
func (s *Shaper) Inspect(ctx context.Context, iface string) (Installed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Installed{}, err
	}
	idx, err := s.linkIndex(iface)
	if err != nil {
		return Installed{}, err
	}
	st, err := s.readState(idx)
	if err != nil {
		return Installed{}, err
	}
	in := Installed{Ours: ours(st.root), RootKind: st.root.Kind}
	if !in.Ours {
		return in, nil
	}
	active, _ := st.filterBands()
	in.LeafKind = st.leaves[ThrottledClass].Kind
	in.Rate = st.classes[ThrottledClass].Rate * 8
	in.Filters = len(st.band(active))
	in.ThrottledStats, in.OtherStats = st.stats[ThrottledClass], st.stats[OtherClass]
	return in, nil
}
