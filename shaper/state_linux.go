package shaper

import (
	"context"
	"errors"
	"fmt"
	"strings"

	tc "github.com/florianl/go-tc"
	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kernelState is what the kernel holds for one served interface.
type kernelState struct {
	shaping        bool // the interface is itself one of our shaping devices
	root           rawQdisc
	legacy         bool   // the root is the root-HTB layout of an earlier release
	clsact         string // "clsact", "ingress" or "" (none)
	classifiers    map[Hook]classifierWire
	foreignAtPrio  map[Hook]string // kind of someone else's filter at our prio
	foreignFilters int             // filters on the hooks that are not ours
	device         vnl.Link        // our shaping device, nil when absent
	addedClsact    bool            // the device's alias says we added the clsact qdisc
	deviceForeign  string          // type of a device that has our device's name but is not ours
}

// ours reports whether any piece of our clsact layout is there.
func (st kernelState) ours() bool { return len(st.classifiers) > 0 || st.device != nil }

// refuseForeign fails when installing on hook would touch what is not ours.
func (st kernelState) refuseForeign(dev string, hook Hook) error {
	if st.shaping {
		return fmt.Errorf("shaper: interface %s: it is a shaping device of egressguard, not an interface to throttle", dev)
	}
	if st.deviceForeign != "" {
		return fmt.Errorf("shaper: interface %s: a %s device named %s exists without our alias: %w", dev, st.deviceForeign, ShapingDevice(dev), ErrForeign)
	}
	if kind := st.foreignAtPrio[hook]; kind != "" {
		return fmt.Errorf("shaper: interface %s: a %s filter holds prio %d on %s: %w", dev, kind, FilterPrio, hook, ErrForeign)
	}
	if st.clsact == "ingress" && hook == HookEgress {
		return fmt.Errorf("shaper: interface %s: an ingress qdisc leaves no egress hook (clsact needs its place): %w", dev, ErrForeign)
	}
	return nil
}

func ourLegacyRoot(root rawQdisc) bool { return root.Kind == "htb" && root.Handle == RootHandle }

func (s *Shaper) readState(idx uint32, dev string) (kernelState, error) {
	st := kernelState{classifiers: map[Hook]classifierWire{}, foreignAtPrio: map[Hook]string{}}
	// A shaping device's own htb e9: root is no legacy layout, and it
	// serves another interface: nothing of it is looked at as a target.
	if l, err := s.link.LinkByIndex(int(idx)); err == nil && l.Type() == "ifb" && strings.HasPrefix(l.Attrs().Alias, ShapingAlias) {
		st.shaping = true
		return st, nil
	}
	qs, err := s.qdiscs(idx)
	if err != nil {
		return st, err
	}
	for _, q := range qs {
		switch q.Parent {
		case HandleRoot:
			st.root = q
		case HandleIngress:
			st.clsact = q.Kind
		}
	}
	st.legacy = ourLegacyRoot(st.root)
	hooks := []Hook{HookIngress, HookEgress}
	if st.clsact == "ingress" {
		hooks = hooks[:1]
	}
	if st.clsact != "" {
		for _, hook := range hooks {
			fs, err := s.filters(idx, hookParent(hook))
			if err != nil {
				return st, fmt.Errorf("shaper: dump %s filters of %s: %w", hook, dev, err)
			}
			for _, f := range fs {
				atPrio := f.Prio == FilterPrio
				switch {
				case atPrio && f.Kind == "bpf" && f.Handle == FilterHandle:
					st.classifiers[hook] = classifierWire{Hook: hook, Program: f.Ops, Target: f.Mirred}
				case f.Handle == 0: // the header of a prio's filter list
					if atPrio && (f.Kind != "bpf" || f.Proto != unix.ETH_P_ALL) {
						st.foreignAtPrio[hook] = f.Kind
					}
				default:
					st.foreignFilters++
					if atPrio {
						st.foreignAtPrio[hook] = f.Kind
					}
				}
			}
		}
	}
	l, err := s.link.LinkByName(ShapingDevice(dev))
	var notFound vnl.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		return st, fmt.Errorf("shaper: find %s: %w", ShapingDevice(dev), err)
	case l.Type() == "ifb" && (l.Attrs().Alias == "" || l.Attrs().Alias == shapingAlias(dev, false) || l.Attrs().Alias == shapingAlias(dev, true)):
		// No alias: a crash came between creating the device and naming it.
		st.device, st.addedClsact = l, l.Attrs().Alias == shapingAlias(dev, true)
	default:
		st.deviceForeign = l.Type()
	}
	return st, nil
}

// shapingState is what the kernel holds on a shaping device.
type shapingState struct {
	root     rawQdisc
	leaf     rawQdisc
	class    classWire
	hasClass bool
	stats    ClassStats
}

func (s *Shaper) readShaping(ifb uint32) (shapingState, error) {
	var sh shapingState
	qs, err := s.qdiscs(ifb)
	if err != nil {
		return sh, err
	}
	for _, q := range qs {
		switch q.Parent {
		case HandleRoot:
			sh.root = q
		case ThrottledClass:
			sh.leaf = q
		}
	}
	if !(sh.root.Kind == "htb" && sh.root.Handle == RootHandle) {
		return sh, nil
	}
	classes, err := s.tc.Class().Get(&tc.Msg{Family: unix.AF_UNSPEC, Ifindex: ifb})
	if err != nil {
		return sh, fmt.Errorf("shaper: dump classes: %w", err)
	}
	for _, o := range classes {
		if c, stats, ok := decodeClass(o); ok && c.ClassID == ThrottledClass {
			sh.class, sh.stats, sh.hasClass = c, stats, true
		}
	}
	return sh, nil
}

// Inspect reports what of our layout iface carries: the classifier's hook,
// the shaping device with its throttled class (rate, leaf, counters), a
// legacy root, and the interface's root qdisc kind.
func (s *Shaper) Inspect(ctx context.Context, iface string) (Installed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Installed{}, err
	}
	idx, _, err := s.linkInfo(iface)
	if err != nil {
		return Installed{}, err
	}
	st, err := s.readState(idx, iface)
	if err != nil {
		return Installed{}, err
	}
	in := Installed{Ours: st.ours() || st.legacy, Intact: st.device != nil && len(st.classifiers) > 0, Legacy: st.legacy, RootKind: st.root.Kind}
	for _, h := range []Hook{HookEgress, HookIngress} {
		if _, ok := st.classifiers[h]; ok {
			in.Hook = h
		}
	}
	if st.device == nil {
		return in, nil
	}
	in.Device = st.device.Attrs().Name
	sh, err := s.readShaping(uint32(st.device.Attrs().Index))
	if err != nil {
		return in, err
	}
	in.LeafKind = sh.leaf.Kind
	in.Rate = sh.class.Rate * 8
	in.ThrottledStats = sh.stats
	return in, nil
}
