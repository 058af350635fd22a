package shaper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	tc "github.com/florianl/go-tc"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Shaper programs the layout of a Plan into the kernel over rtnetlink,
// optionally inside a network namespace. It is safe for concurrent use.
type Shaper struct {
	mu  sync.Mutex
	tc  *tc.Tc        // classes, filters, htb and leaf qdiscs
	nl  *netlink.Conn // links and raw qdiscs of any kind (dump, restore)
	log *slog.Logger

	writes int // kernel writes so far
	failAt int // tests: when > 0, the write with this number fails
}

// errInjected is what a write fails with when a test sets failAt.
var errInjected = errors.New("injected failure")

// Open connects to rtnetlink in the namespace opts.NetNS (0 = current).
func Open(opts Options) (*Shaper, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t, err := tc.Open(&tc.Config{NetNS: opts.NetNS})
	if err != nil {
		return nil, fmt.Errorf("shaper: open rtnetlink for tc: %w", err)
	}
	nl, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: opts.NetNS})
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("shaper: open rtnetlink: %w", err)
	}
	for _, c := range []interface {
		SetOption(netlink.ConnOption, bool) error
	}{t, nl} {
		// Extended acks carry the kernel's reason ("Invalid qdisc name", …) into errors.
		_ = c.SetOption(netlink.ExtendedAcknowledge, true)
	}
	return &Shaper{tc: t, nl: nl, log: log}, nil
}

// Close releases the netlink sockets.
func (s *Shaper) Close() error {
	return errors.Join(s.tc.Close(), s.nl.Close())
}

// write performs one kernel write, named for errors and logs.
func (s *Shaper) write(what string, fn func() error) error {
	s.writes++
	var err error
	if s.failAt > 0 && s.writes == s.failAt {
		err = errInjected
	} else {
		err = fn()
	}
	if err != nil {
		return fmt.Errorf("shaper: %s: %w", what, err)
	}
	s.log.Debug("tc write", "op", what)
	return nil
}

func ours(root rawQdisc) bool { return root.Kind == "htb" && root.Handle == RootHandle }

// Apply installs p on p.Spec.Interface. A kernel-default root is replaced
// (and recorded in ApplyResult.Previous); a foreign root is refused with
// ErrForeignRoot unless o.Force; our own root is updated in place, and
// re-applying the installed Plan writes nothing. On failure every write of
// this call is undone.
func (s *Shaper) Apply(ctx context.Context, p Plan, o ApplyOptions) (ApplyResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return ApplyResult{}, err
	}
	dev := p.Spec.Interface
	if err := p.Spec.Validate(); err != nil {
		return ApplyResult{}, err
	}
	idx, err := s.linkIndex(dev)
	if err != nil {
		return ApplyResult{}, err
	}
	root, err := s.root(idx)
	if err != nil {
		return ApplyResult{}, err
	}
	if ours(root) {
		changed, err := s.update(idx, p)
		return ApplyResult{Changed: changed}, err
	}
	if !IsKernelDefaultRoot(root.Kind) && !o.Force {
		return ApplyResult{}, fmt.Errorf("shaper: interface %s: refusing to replace root qdisc %s (handle %s) without force: %w",
			dev, root.Kind, root.Handle, ErrForeignRoot)
	}
	prev := Previous{Kind: root.Kind, Handle: uint32(root.Handle), Options: root.Options}
	if err := s.install(idx, p); err != nil {
		return ApplyResult{}, errors.Join(err, s.restore(idx, dev, prev))
	}
	s.log.Info("shaper installed", "interface", dev, "previous_root", prev.Kind, "rate_bps", p.Spec.Rate,
		"ports", p.Spec.Ports, "scope", p.Spec.Scope(), "filters", len(p.Filters))
	return ApplyResult{Previous: prev, Replaced: true, Changed: true}, nil
}

// install writes the whole Plan over a root that is not ours, filters in band 0.
func (s *Shaper) install(idx uint32, p Plan) error {
	dev := p.Spec.Interface
	if err := s.write(fmt.Sprintf("replace root qdisc %s on %s", p.Root.Handle, dev), func() error {
		return s.tc.Qdisc().Replace(rootObject(idx, p.Root))
	}); err != nil {
		return err
	}
	for _, c := range p.Classes {
		if err := s.putClass(idx, dev, c.wire(), false); err != nil {
			return err
		}
	}
	for _, q := range p.Leaves {
		if err := s.addLeaf(idx, dev, q); err != nil {
			return err
		}
	}
	for _, f := range planFilters(p) {
		if err := s.addFilter(idx, dev, f, 0); err != nil {
			return err
		}
	}
	return nil
}

func (s *Shaper) putClass(idx uint32, dev string, c classWire, change bool) error {
	verb, op := "add", s.tc.Class().Add
	if change {
		verb, op = "change", s.tc.Class().Replace
	}
	return s.write(fmt.Sprintf("%s class %s on %s", verb, c.ClassID, dev), func() error { return op(classObject(idx, c)) })
}

func (s *Shaper) addLeaf(idx uint32, dev string, q Qdisc) error {
	return s.write(fmt.Sprintf("add %s qdisc %s on %s", q.Kind, q.Handle, dev), func() error {
		o, err := leafObject(idx, q)
		if err != nil {
			return err
		}
		return s.tc.Qdisc().Add(o)
	})
}

func (s *Shaper) addFilter(idx uint32, dev string, f filterWire, band uint16) error {
	prio := f.Prio + band*bandOffset
	return s.write(fmt.Sprintf("add filter prio %d flowid %s on %s", prio, f.FlowID, dev), func() error {
		return s.tc.Filter().Add(filterObject(idx, f, prio))
	})
}

func (s *Shaper) deletePrio(idx uint32, dev string, prio, proto uint16) error {
	return s.write(fmt.Sprintf("delete filters prio %d on %s", prio, dev), func() error {
		return s.tc.Filter().Delete(&tc.Object{
			Msg:       tc.Msg{Family: unix.AF_UNSPEC, Ifindex: idx, Parent: uint32(RootHandle), Info: filterInfo(prio, proto)},
			Attribute: tc.Attribute{Kind: "u32"},
		})
	})
}

// update brings our installed layout to p: classes are changed in place,
// leaves swapped, and the filters installed in the free prio band before
// the old band is deleted, so the throttled ports are never unclassified.
// On failure the writes are undone in reverse order.
func (s *Shaper) update(idx uint32, p Plan) (changed bool, err error) {
	dev := p.Spec.Interface
	st, err := s.readState(idx)
	if err != nil {
		return false, err
	}
	var undo []func() error
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			err = errors.Join(err, undo[i]())
		}
		changed = false
	}()

	for _, c := range p.Classes {
		want := c.wire()
		old, ok := st.classes[c.ClassID]
		if ok && old == want {
			continue
		}
		if err := s.putClass(idx, dev, want, ok); err != nil {
			return false, err
		}
		if ok {
			undo = append(undo, func() error { return s.putClass(idx, dev, old, true) })
		} else {
			undo = append(undo, func() error {
				return s.write(fmt.Sprintf("delete class %s on %s", want.ClassID, dev), func() error {
					return s.tc.Class().Delete(&tc.Object{Msg: tc.Msg{Ifindex: idx, Handle: uint32(want.ClassID), Parent: uint32(want.Parent)}, Attribute: tc.Attribute{Kind: "htb"}})
				})
			})
		}
	}

	for _, q := range p.Leaves {
		old, ok := st.leaves[q.Parent]
		if ok && decodeLeaf(old) == q {
			continue
		}
		if ok && old.Kind == q.Kind {
			// Same kind: change its parameters in place, queued packets stay.
			if err := s.write(fmt.Sprintf("change %s qdisc %s on %s", q.Kind, q.Handle, dev), func() error {
				o, err := leafObject(idx, q)
				if err != nil {
					return err
				}
				return s.tc.Qdisc().Replace(o)
			}); err != nil {
				return false, err
			}
			undo = append(undo, func() error {
				return s.write(fmt.Sprintf("restore %s qdisc %s on %s", old.Kind, old.Handle, dev), func() error { return s.putQdisc(idx, old) })
			})
			continue
		}
		// Another kind: without a leaf the htb class still shapes (through
		// a default pfifo), so swapping the leaf opens no unshaped window.
		if ok {
			if err := s.write(fmt.Sprintf("delete %s qdisc %s on %s", old.Kind, old.Handle, dev), func() error {
				return s.deleteQdisc(idx, old.Parent, old.Handle)
			}); err != nil {
				return false, err
			}
			undo = append(undo, func() error {
				return s.write(fmt.Sprintf("restore %s qdisc %s on %s", old.Kind, old.Handle, dev), func() error { return s.putQdisc(idx, old) })
			})
		}
		if err := s.addLeaf(idx, dev, q); err != nil {
			return false, err
		}
		undo = append(undo, func() error {
			return s.write(fmt.Sprintf("delete %s qdisc %s on %s", q.Kind, q.Handle, dev), func() error {
				return s.deleteQdisc(idx, q.Parent, q.Handle)
			})
		})
	}

	want := planFilters(p)
	active, bands := st.filterBands()
	if len(bands) == 1 && slices.EqualFunc(st.band(active), want, filterWire.equal) {
		return len(undo) > 0, nil
	}
	target := uint16(0)
	if slices.Contains(bands, 0) {
		target = 1
	}
	// Leftovers of an interrupted update in the target band go first.
	if err := s.deleteBand(idx, dev, st, target, &undo); err != nil {
		return false, err
	}
	undo = append(undo, func() error { return s.clearBand(idx, dev, target) })
	for _, f := range want {
		if err := s.addFilter(idx, dev, f, target); err != nil {
			return false, err
		}
	}
	for _, b := range bands {
		if b != target {
			if err := s.deleteBand(idx, dev, st, b, &undo); err != nil {
				return false, err
			}
		}
	}
	s.log.Info("shaper updated", "interface", dev, "rate_bps", p.Spec.Rate, "ports", p.Spec.Ports,
		"scope", p.Spec.Scope(), "filters", len(p.Filters), "band", target)
	return true, nil
}

// deleteBand deletes the filters of one band, throttle rules before
// whitelist rules (so whitelisted traffic is never throttled meanwhile),
// and records how to re-add each deleted prio.
func (s *Shaper) deleteBand(idx uint32, dev string, st kernelState, band uint16, undo *[]func() error) error {
	old := st.band(band)
	for _, prio := range slices.Backward(bandPrios()) {
		var group []filterWire
		for _, f := range old {
			if f.Prio == prio {
				group = append(group, f)
			}
		}
		if len(group) == 0 {
			continue
		}
		if err := s.deletePrio(idx, dev, prio+band*bandOffset, group[0].Protocol); err != nil {
			return err
		}
		*undo = append(*undo, func() error {
			for _, f := range group {
				if err := s.addFilter(idx, dev, f, band); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return nil
}

// clearBand deletes whatever filters exist in one band (undo of an add).
func (s *Shaper) clearBand(idx uint32, dev string, band uint16) error {
	st, err := s.readState(idx)
	if err != nil {
		return err
	}
	var ignored []func() error
	return s.deleteBand(idx, dev, st, band, &ignored)
}

// Remove deletes our layout from iface and restores the root qdisc prev
// describes. A root that is not ours is left alone.
func (s *Shaper) Remove(ctx context.Context, iface string, prev Previous) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	idx, err := s.linkIndex(iface)
	if err != nil {
		return err
	}
	root, err := s.root(idx)
	if err != nil {
		return err
	}
	if !ours(root) {
		s.log.Info("shaper remove: root is not ours, left alone", "interface", iface, "root", root.Kind)
		return nil
	}
	if err := s.restore(idx, iface, prev); err != nil {
		return err
	}
	s.log.Info("shaper removed", "interface", iface, "restored_root", prev.Kind)
	return nil
}

// restore deletes our root (if it is there) and makes the root qdisc what
// prev says: deleting our root makes the kernel attach the device default,
// which is kept when it is prev's kind, else prev is recreated. An empty
// prev keeps the device default.
func (s *Shaper) restore(idx uint32, dev string, prev Previous) error {
	root, err := s.root(idx)
	if err != nil {
		return err
	}
	if ours(root) {
		if err := s.write(fmt.Sprintf("delete root qdisc %s on %s", RootHandle, dev), func() error {
			return s.deleteQdisc(idx, HandleRoot, RootHandle)
		}); err != nil {
			return err
		}
	}
	if prev.Kind == "" {
		return nil
	}
	restored := func(r rawQdisc) bool {
		return r.Kind == prev.Kind && (prev.Handle == 0 || r.Handle == Handle(prev.Handle))
	}
	if root, err = s.root(idx); err != nil || restored(root) {
		return err
	}
	want := rawQdisc{Parent: HandleRoot, Handle: Handle(prev.Handle), Kind: prev.Kind, Options: prev.Options}
	if err := s.write(fmt.Sprintf("restore root qdisc %s %s on %s", prev.Kind, want.Handle, dev), func() error {
		return s.putQdisc(idx, want)
	}); err != nil {
		return err
	}
	if root, err = s.root(idx); err != nil {
		return err
	}
	if !restored(root) {
		return fmt.Errorf("shaper: restore root qdisc on %s: kernel holds %s %s, want %s %s", dev, root.Kind, root.Handle, prev.Kind, want.Handle)
	}
	return nil
}
