package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/shaper"
)

// Kernel is the part of the shaper that touches the kernel.
type Kernel interface {
	Apply(ctx context.Context, p shaper.Plan, o shaper.ApplyOptions) (shaper.ApplyResult, error)
	Remove(ctx context.Context, iface string, prev shaper.Previous) error
	Inspect(ctx context.Context, iface string) (shaper.Installed, error)
	// Roots reports every interface's root qdisc and our layout (Ours, Intact, Legacy and RootKind only)
	// from one dump.
	Roots(ctx context.Context) (map[string]shaper.Installed, error)
}

// Controller installs, records and removes mitigations.
type Controller struct {
	Store    *state.Store
	Kernel   Kernel
	Features shaper.Features
	Now      func() time.Time
	Log      *slog.Logger
	// RecoverTTL is the lifetime of a record rebuilt from the kernel after
	// an unreadable state file (throttle.ttl).
	RecoverTTL time.Duration
}

// OwnerRecovered owns a record rebuilt from the kernel after the state file
// could not be read: the layout stays (reason manual) until RecoverTTL ends
// or an operator releases it.
const OwnerRecovered = "recovered"

// ErrRecord marks a kernel change whose record could not be written (a full
// disk, a read-only state_dir): the kernel and the record disagree until the
// record is repaired, so the change is not reported done. Any other error
// from Throttle or Unthrottle means the kernel is as it was.
var ErrRecord = errors.New("the kernel changed but the state file was not written")

// Request is a throttle to install: the Spec, why, and until when.
type Request struct {
	Spec   shaper.Spec
	Reason policy.Reason
	// Owners replace the record's owners; nil adds Reason to those it has.
	Owners  []string
	Expires time.Time
}

// ErrNotThrottled is returned when there is nothing to remove on an interface.
var ErrNotThrottled = errors.New("not throttled by egressguard")

// Install installs r.Spec (or updates the mitigation already on that
// interface in place) and records it. When the record cannot be written, the
// kernel change is undone so that the node is left as it was.
func (c *Controller) Install(ctx context.Context, r Request) (state.Mitigation, error) {
	plan, err := shaper.NewPlan(r.Spec, c.Features)
	if err != nil {
		return state.Mitigation{}, err
	}
	var m state.Mitigation
	err = c.withState(ctx, func(st *state.State) error {
		var existed bool
		m, existed = st.Find(r.Spec.Interface)
		// A record of an earlier release names the root qdisc its root-HTB
		// throttle replaced; Apply restores it once the new layout is in.
		res, err := c.Kernel.Apply(ctx, plan, shaper.ApplyOptions{Legacy: m.Previous})
		if err != nil {
			return err
		}
		if !existed {
			m = state.Mitigation{Interface: r.Spec.Interface, Since: c.Now(), Reason: r.Reason}
		}
		if res.ReleasedLegacy {
			m.Previous = shaper.Previous{} // restored; nothing is left to restore
		}
		m.Scope = r.Spec.Scope
		m.Sources = r.Spec.Sources
		m.Ports = r.Spec.Ports
		m.Protocols = r.Spec.Protocols
		m.RateBps = r.Spec.Rate
		m.Warnings = plan.Warnings
		switch {
		case r.Owners != nil:
			m.Owners = slices.Clone(r.Owners)
		case !slices.Contains(m.Owners, string(r.Reason)):
			m.Owners = append(m.Owners, string(r.Reason))
		}
		m.Expires = r.Expires
		st.Put(m)
		if err := c.Store.Save(*st); err != nil {
			if !res.Installed {
				return fmt.Errorf("%s: %w: %w", r.Spec.Interface, ErrRecord, err)
			}
			if rerr := c.Kernel.Remove(ctx, r.Spec.Interface, shaper.Previous{}); rerr != nil {
				return fmt.Errorf("%s: %w: %w (undo: %w)", r.Spec.Interface, ErrRecord, err, rerr)
			}
			return err
		}
		c.Log.Info("throttle installed", "interface", m.Interface, "scope", m.Scope, "sources", m.Sources,
			"ports", m.Ports, "rate_bps", m.RateBps, "reason", r.Reason, "changed", res.Changed, "expires", m.Expires)
		return nil
	})
	if err != nil {
		return state.Mitigation{}, err
	}
	return m, nil
}

// Record updates the owners and expiry of the mitigation on iface in the
// state file, leaving the kernel as it is.
func (c *Controller) Record(ctx context.Context, iface string, owners []string, expires time.Time) error {
	return c.withState(ctx, func(st *state.State) error {
		m, ok := st.Find(iface)
		if !ok {
			return fmt.Errorf("%s: %w", iface, ErrNotThrottled)
		}
		m.Owners = slices.Clone(owners)
		m.Expires = expires
		st.Put(m)
		return c.Store.Save(*st)
	})
}

// withState runs fn on the state file's content under the store's lock.
func (c *Controller) withState(ctx context.Context, fn func(st *state.State) error) error {
	unlock, err := c.Store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := c.loadLocked(ctx)
	if err != nil {
		return err
	}
	return fn(&st)
}

// Load reads the state file. One that cannot be read is moved aside and the
// record rebuilt from the kernel (see Rebuild), so an unreadable file never
// stops protection or release.
func (c *Controller) Load(ctx context.Context) (state.State, error) {
	st, err := c.Store.Load()
	if !errors.Is(err, state.ErrUnreadable) {
		return st, err
	}
	unlock, err := c.Store.Lock()
	if err != nil {
		return state.State{}, err
	}
	defer unlock()
	return c.loadLocked(ctx)
}

// LoadClamped is Load with every record bounded (state.Mitigation.Clamp):
// a record written under a wrong clock neither starts in the future nor
// expires after now+maxTTL. Clamped records are written back and logged.
func (c *Controller) LoadClamped(ctx context.Context, maxTTL time.Duration) (state.State, error) {
	var out state.State
	err := c.withState(ctx, func(st *state.State) error {
		now, changed := c.Now(), false
		for i, m := range st.Mitigations {
			if cm, ok := m.Clamp(now, maxTTL); ok {
				c.Log.Warn("record from a wrong clock clamped", "interface", m.Interface,
					"since", m.Since, "expires", m.Expires, "clamped_since", cm.Since, "clamped_expires", cm.Expires)
				st.Mitigations[i], changed = cm, true
			}
		}
		out = *st
		if changed {
			return c.Store.Save(*st)
		}
		return nil
	})
	return out, err
}

func (c *Controller) loadLocked(ctx context.Context) (state.State, error) {
	st, err := c.Store.Load()
	if errors.Is(err, state.ErrUnreadable) {
		return c.rebuild(ctx, err)
	}
	return st, err
}

// rebuild moves the unreadable state file aside and writes a record of
// every egressguard layout the kernel holds: scope node at the installed
// rate, owned by OwnerRecovered until now+RecoverTTL, the config's ports.
// What the layout replaced is unknown, so its removal restores the kernel's
// default root.
func (c *Controller) rebuild(ctx context.Context, cause error) (state.State, error) {
	now := c.Now()
	aside, err := c.Store.MoveAside(now)
	if err != nil {
		return state.State{}, errors.Join(cause, err)
	}
	roots, err := c.Kernel.Roots(ctx)
	if err != nil {
		return state.State{}, fmt.Errorf("control: rebuild the state from the kernel: %w", err)
	}
	st := state.State{}
	for _, name := range slices.Sorted(maps.Keys(roots)) {
		if !roots[name].Ours {
			continue
		}
		inst, err := c.Kernel.Inspect(ctx, name)
		if err != nil {
			return state.State{}, fmt.Errorf("control: rebuild the state from the kernel: %w", err)
		}
		st.Put(state.Mitigation{
			Interface: name, Scope: shaper.ScopeNode, RateBps: inst.Rate, Reason: policy.ReasonManual,
			Owners: []string{OwnerRecovered}, Since: now, Expires: now.Add(c.RecoverTTL),
			Warnings: []string{"rebuilt from the kernel after an unreadable state file; scope, sources and ports are the config's"},
		})
	}
	if err := c.Store.Save(st); err != nil {
		return state.State{}, err
	}
	names := make([]string, 0, len(st.Mitigations))
	for _, m := range st.Mitigations {
		names = append(names, m.Interface)
	}
	c.Log.Error("state file unreadable: moved aside and rebuilt from the kernel; check the kept file",
		"cause", cause, "kept_as", aside, "rebuilt", names, "expires", now.Add(c.RecoverTTL))
	return st, nil
}

// Unthrottle removes the mitigation on iface and restores the root qdisc it
// replaced. An interface that carries egressguard's layout but has no record
// (a lost state file) is cleaned too: the kernel default root comes back.
func (c *Controller) Unthrottle(ctx context.Context, iface string) error {
	return c.withState(ctx, func(st *state.State) error { return c.removeLocked(ctx, st, iface) })
}

// UnthrottleAll removes every recorded mitigation and every egressguard
// layout found on the node's interfaces.
func (c *Controller) UnthrottleAll(ctx context.Context) error {
	return c.withState(ctx, func(st *state.State) error {
		ifaces, err := c.oursOrRecorded(ctx, *st)
		if err != nil {
			return err
		}
		var errs []error
		for _, name := range ifaces {
			if err := c.removeLocked(ctx, st, name); err != nil && !errors.Is(err, ErrNotThrottled) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

func (c *Controller) removeLocked(ctx context.Context, st *state.State, iface string) error {
	m, recorded := st.Find(iface)
	inst, err := c.Kernel.Inspect(ctx, iface)
	gone := err != nil && isNoDevice(iface)
	if err != nil && !gone {
		return err
	}
	if !recorded && !inst.Ours {
		return fmt.Errorf("%s: %w", iface, ErrNotThrottled)
	}
	// A gone interface may leave its shaping device behind; Remove deletes it.
	if inst.Ours || gone {
		if err := c.Kernel.Remove(ctx, iface, m.Previous); err != nil {
			return err
		}
	}
	st.Delete(iface)
	if err := c.Store.Save(*st); err != nil {
		if inst.Ours {
			return fmt.Errorf("%s: %w: %w", iface, ErrRecord, err)
		}
		return err
	}
	c.Log.Info("throttle removed", "interface", iface, "restored", m.Previous.Kind, "recorded", recorded, "interface_gone", gone)
	return nil
}

// oursOrRecorded lists the interfaces that carry an egressguard root or have
// a record, each once.
func (c *Controller) oursOrRecorded(ctx context.Context, st state.State) ([]string, error) {
	var names []string
	for _, m := range st.Mitigations {
		names = append(names, m.Interface)
	}
	roots, err := c.Kernel.Roots(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(roots)) {
		if roots[name].Ours && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, nil
}

func isNoDevice(iface string) bool {
	_, err := net.InterfaceByName(iface)
	return err != nil
}
