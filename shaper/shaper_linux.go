package shaper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	tc "github.com/florianl/go-tc"
	"github.com/mdlayher/netlink"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Shaper programs the layout of a Plan into the kernel over rtnetlink,
// optionally inside a network namespace. It is safe for concurrent use.
type Shaper struct {
	mu   sync.Mutex
	tc   *tc.Tc        // classes, filters, htb and leaf qdiscs
	nl   *netlink.Conn // links and raw qdiscs of any kind (dump, restore)
	link *vnl.Handle   // the shaping device
	log  *slog.Logger

	writes int  // kernel writes so far
	failAt int  // tests: when > 0, the write with this number fails
	crash  bool // tests: a failAt failure also skips the undo, as a kill -9 there would
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
	var h *vnl.Handle
	if opts.NetNS != 0 {
		h, err = vnl.NewHandleAt(netns.NsHandle(opts.NetNS))
	} else {
		h, err = vnl.NewHandle()
	}
	if err != nil {
		t.Close()
		nl.Close()
		return nil, fmt.Errorf("shaper: open rtnetlink for links: %w", err)
	}
	for _, c := range []interface {
		SetOption(netlink.ConnOption, bool) error
	}{t, nl} {
		// Extended acks carry the kernel's reason ("Invalid qdisc name", …) into errors.
		_ = c.SetOption(netlink.ExtendedAcknowledge, true)
	}
	sh := &Shaper{tc: t, nl: nl, link: h, log: log}
	if err := sh.primeDumpBuffer(); err != nil {
		sh.Close()
		return nil, fmt.Errorf("shaper: prepare rtnetlink dumps: %w", err)
	}
	return sh, nil
}

// Close releases the netlink sockets.
func (s *Shaper) Close() error {
	s.link.Close()
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

// undoStack holds the inverse of every write of one call, run in reverse
// when the call fails.
type undoStack []func() error

func (u *undoStack) push(fn func() error) { *u = append(*u, fn) }

func (u undoStack) run(err error) error {
	for i := len(u) - 1; i >= 0; i-- {
		err = errors.Join(err, u[i]())
	}
	return err
}

// Apply installs p, or brings the installed layout to p in place: the
// shaping device and its classes first, the classifier last, and an update
// of the classifier is one atomic filter replace, so matched packets are
// never unclassified. The root qdisc of the interface is not touched (a
// root-HTB throttle of an earlier release is released once the new layout
// is in place, see ApplyOptions.Legacy). Re-applying the installed Plan
// writes nothing. On failure every write of this call is undone.
func (s *Shaper) Apply(ctx context.Context, p Plan, o ApplyOptions) (res ApplyResult, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return ApplyResult{}, err
	}
	if err := p.Spec.Validate(); err != nil {
		return ApplyResult{}, err
	}
	dev := p.Spec.Interface
	idx, link, err := s.linkInfo(dev)
	if err != nil {
		return ApplyResult{}, err
	}
	if link != p.Link {
		if p, err = p.ForLink(link); err != nil {
			return ApplyResult{}, err
		}
	}
	st, err := s.readState(idx, dev)
	if err != nil {
		return ApplyResult{}, err
	}
	if err := st.refuseForeign(dev, p.Hook); err != nil {
		return ApplyResult{}, err
	}
	writes := s.writes
	var undo undoStack
	defer func() {
		if err != nil {
			if !(s.crash && errors.Is(err, errInjected)) {
				err = undo.run(err)
			}
			res = ApplyResult{}
		}
	}()
	res.Installed = !st.ours()
	ifb, err := s.ensureDevice(p, st, &undo)
	if err != nil {
		return ApplyResult{}, err
	}
	if err := s.ensureShaping(p, ifb, &undo); err != nil {
		return ApplyResult{}, err
	}
	if st.clsact == "" {
		if err := s.write(fmt.Sprintf("add clsact qdisc on %s", dev), func() error { return s.putQdisc(idx, clsactQdisc()) }); err != nil {
			return ApplyResult{}, err
		}
		undo.push(func() error {
			return s.write(fmt.Sprintf("delete clsact qdisc on %s", dev), func() error { return s.deleteQdisc(idx, HandleIngress, HandleClsact) })
		})
	}
	if err := s.ensureClassifier(idx, p, ifb, st, &undo); err != nil {
		return ApplyResult{}, err
	}
	if st.legacy {
		if err := s.restore(idx, dev, o.Legacy); err != nil {
			return ApplyResult{}, err
		}
		res.ReleasedLegacy = true
		s.log.Info("shaper released the root-HTB throttle of an earlier release", "interface", dev, "restored_root", o.Legacy.Kind)
	}
	res.Changed = s.writes > writes
	if res.Changed {
		s.log.Info("shaper applied", "interface", dev, "scope", p.Spec.Scope, "hook", p.Hook, "device", p.Device,
			"rate_bps", p.Spec.Rate, "protocols", p.Spec.Protocols, "ports", p.Spec.Ports, "rules", len(p.Rules), "installed", res.Installed)
	}
	return res, nil
}

// ensureDevice creates the shaping device (ifb, up, with our alias in the
// same request, so no crash can leave a device that reconcile would not
// know as ours) unless ours is there already, and returns its index. The
// alias carries ClsactMark when the interface has no clsact qdisc yet
// (Apply adds it next). A device with our name and no alias (what releases
// that named the device in a second write could leave) is adopted.
func (s *Shaper) ensureDevice(p Plan, st kernelState, undo *undoStack) (uint32, error) {
	name := p.Device
	alias := shapingAlias(p.Spec.Interface, st.clsact == "" || st.addedClsact)
	l := st.device
	if l == nil {
		ifb := &vnl.Ifb{LinkAttrs: vnl.LinkAttrs{Name: name, TxQLen: 1000, Flags: net.FlagUp, Alias: alias}}
		if err := s.write("add ifb "+name, func() error { return s.link.LinkAdd(ifb) }); err != nil {
			return 0, err
		}
		undo.push(func() error { return s.write("delete ifb "+name, func() error { return s.link.LinkDel(ifb) }) })
		var err error
		if l, err = s.link.LinkByName(name); err != nil {
			return 0, fmt.Errorf("shaper: find %s: %w", name, err)
		}
	}
	if old := l.Attrs().Alias; old != alias {
		if err := s.write("set alias of "+name, func() error { return s.link.LinkSetAlias(l, alias) }); err != nil {
			return 0, err
		}
		if st.device != nil {
			undo.push(func() error {
				return s.write("restore alias of "+name, func() error { return s.link.LinkSetAlias(l, old) })
			})
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := s.write("set "+name+" up", func() error { return s.link.LinkSetUp(l) }); err != nil {
			return 0, err
		}
	}
	return uint32(l.Attrs().Index), nil
}

// ensureShaping brings the htb root, the throttled class and its leaf on the
// shaping device to p, changing what differs in place.
func (s *Shaper) ensureShaping(p Plan, ifb uint32, undo *undoStack) error {
	dev := p.Device
	sh, err := s.readShaping(ifb)
	if err != nil {
		return err
	}
	if !(sh.root.Kind == "htb" && sh.root.Handle == RootHandle) {
		if err := s.write(fmt.Sprintf("replace root qdisc %s on %s", RootHandle, dev), func() error {
			return s.tc.Qdisc().Replace(rootObject(ifb, p.Root))
		}); err != nil {
			return err
		}
		// Deleting the root takes the class and leaf with it.
		undo.push(func() error {
			return s.write(fmt.Sprintf("delete root qdisc on %s", dev), func() error { return s.deleteQdisc(ifb, HandleRoot, RootHandle) })
		})
		sh = shapingState{}
	}
	want := p.Class.wire()
	if old, ok := sh.class, sh.hasClass; !ok || old != want {
		verb, op := "add", s.tc.Class().Add
		if ok {
			verb, op = "change", s.tc.Class().Replace
		}
		if err := s.write(fmt.Sprintf("%s class %s on %s", verb, want.ClassID, dev), func() error { return op(classObject(ifb, want)) }); err != nil {
			return err
		}
		if ok {
			undo.push(func() error {
				return s.write(fmt.Sprintf("restore class %s on %s", old.ClassID, dev), func() error { return s.tc.Class().Replace(classObject(ifb, old)) })
			})
		}
	}
	old, ok := sh.leaf, sh.leaf.Kind != ""
	if ok && decodeLeaf(old) == p.Leaf {
		return nil
	}
	q := p.Leaf
	if ok && old.Kind == q.Kind {
		// Same kind: change its parameters in place, queued packets stay.
		if err := s.write(fmt.Sprintf("change %s qdisc %s on %s", q.Kind, q.Handle, dev), func() error {
			o, err := leafObject(ifb, q)
			if err != nil {
				return err
			}
			return s.tc.Qdisc().Replace(o)
		}); err != nil {
			return err
		}
		undo.push(func() error {
			return s.write(fmt.Sprintf("restore %s qdisc %s on %s", old.Kind, old.Handle, dev), func() error { return s.putQdisc(ifb, old) })
		})
		return nil
	}
	// Another kind: without a leaf the htb class still shapes (through a
	// default pfifo), so swapping the leaf opens no unshaped window.
	if ok {
		if err := s.write(fmt.Sprintf("delete %s qdisc %s on %s", old.Kind, old.Handle, dev), func() error {
			return s.deleteQdisc(ifb, old.Parent, old.Handle)
		}); err != nil {
			return err
		}
		undo.push(func() error {
			return s.write(fmt.Sprintf("restore %s qdisc %s on %s", old.Kind, old.Handle, dev), func() error { return s.putQdisc(ifb, old) })
		})
	}
	return s.write(fmt.Sprintf("add %s qdisc %s on %s", q.Kind, q.Handle, dev), func() error {
		o, err := leafObject(ifb, q)
		if err != nil {
			return err
		}
		return s.tc.Qdisc().Add(o)
	})
}

// ensureClassifier installs or replaces our filter on the hook p names, and
// deletes ours from the other hook (a scope that moved).
func (s *Shaper) ensureClassifier(idx uint32, p Plan, ifb uint32, st kernelState, undo *undoStack) error {
	dev := p.Spec.Interface
	want := classifierWire{Hook: p.Hook, Program: programBytes(p.Program), Target: ifb}
	old, ok := st.classifiers[p.Hook]
	if !ok || !old.equal(want) {
		if err := s.write(fmt.Sprintf("replace classifier on %s %s", dev, p.Hook), func() error {
			return s.tc.Filter().Replace(classifierObject(idx, want))
		}); err != nil {
			return err
		}
		undo.push(func() error {
			if ok {
				return s.write(fmt.Sprintf("restore classifier on %s %s", dev, p.Hook), func() error { return s.tc.Filter().Replace(classifierObject(idx, old)) })
			}
			return s.deleteClassifier(idx, dev, p.Hook)
		})
	}
	for hook, c := range st.classifiers {
		if hook == p.Hook {
			continue
		}
		if err := s.deleteClassifier(idx, dev, hook); err != nil {
			return err
		}
		undo.push(func() error {
			return s.write(fmt.Sprintf("restore classifier on %s %s", dev, hook), func() error { return s.tc.Filter().Replace(classifierObject(idx, c)) })
		})
	}
	return nil
}

// removeOrphan deletes the shaping device of an interface that is gone.
func (s *Shaper) removeOrphan(iface string) error {
	l, err := s.link.LinkByName(ShapingDevice(iface))
	var notFound vnl.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		return nil
	case err != nil:
		return fmt.Errorf("shaper: find %s: %w", ShapingDevice(iface), err)
	case l.Type() != "ifb" || !strings.HasPrefix(l.Attrs().Alias, shapingAlias(iface, false)):
		return nil
	}
	if err := s.write("delete ifb "+l.Attrs().Name, func() error { return s.link.LinkDel(l) }); err != nil {
		return err
	}
	s.log.Info("shaper removed the shaping device of a gone interface", "interface", iface, "device", l.Attrs().Name)
	return nil
}

func (s *Shaper) deleteClassifier(idx uint32, dev string, hook Hook) error {
	return s.write(fmt.Sprintf("delete classifier on %s %s", dev, hook), func() error {
		return s.tc.Filter().Delete(&tc.Object{
			Msg:       tc.Msg{Family: unix.AF_UNSPEC, Ifindex: idx, Parent: hookParent(hook), Handle: FilterHandle, Info: filterInfo(FilterPrio, unix.ETH_P_ALL)},
			Attribute: tc.Attribute{Kind: "bpf"},
		})
	})
}

// Remove deletes our classifier from iface, the clsact qdisc when our
// shaping device says Apply added it and nothing else is on it, then the
// shaping device; a root-HTB throttle of an earlier release is released
// and the root qdisc prev names restored. What is not ours is left alone.
// Interrupted at any point, a second Remove finishes the job. When iface
// itself is gone, its shaping device (which outlives it) is deleted.
func (s *Shaper) Remove(ctx context.Context, iface string, prev Previous) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	idx, _, err := s.linkInfo(iface)
	if errors.Is(err, unix.ENODEV) {
		return s.removeOrphan(iface)
	}
	if err != nil {
		return err
	}
	st, err := s.readState(idx, iface)
	if err != nil {
		return err
	}
	for hook := range st.classifiers {
		if err := s.deleteClassifier(idx, iface, hook); err != nil {
			return err
		}
	}
	dropClsact := st.clsact == "clsact" && st.addedClsact && st.foreignFilters == 0
	if dropClsact {
		if err := s.write(fmt.Sprintf("delete clsact qdisc on %s", iface), func() error { return s.deleteQdisc(idx, HandleIngress, HandleClsact) }); err != nil {
			return err
		}
	}
	if st.device != nil {
		if err := s.write("delete ifb "+st.device.Attrs().Name, func() error { return s.link.LinkDel(st.device) }); err != nil {
			return err
		}
	}
	if st.legacy {
		if err := s.restore(idx, iface, prev); err != nil {
			return err
		}
	}
	s.log.Info("shaper removed", "interface", iface, "legacy_root_restored", st.legacy, "clsact_deleted", dropClsact)
	return nil
}
