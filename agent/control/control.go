package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
}

// Controller installs, records and removes mitigations.
type Controller struct {
	Store    *state.Store
	Kernel   Kernel
	Features shaper.Features
	Now      func() time.Time
	Log      *slog.Logger
}

// Request is a throttle to install: the Spec, why, and until when.
type Request struct {
	Spec   shaper.Spec
	Reason policy.Reason
	// Owners replace the record's owners; nil adds Reason to those it has.
	Owners  []string
	Expires time.Time
	Force   bool // replace a foreign root qdisc
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
	err = c.withState(func(st *state.State) error {
		res, err := c.Kernel.Apply(ctx, plan, shaper.ApplyOptions{Force: r.Force})
		if err != nil {
			return err
		}
		var existed bool
		m, existed = st.Find(r.Spec.Interface)
		if !existed {
			m = state.Mitigation{Interface: r.Spec.Interface, Since: c.Now(), Reason: r.Reason}
		}
		if res.Replaced {
			m.Previous = res.Previous
		}
		m.Scope = r.Spec.Scope()
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
			if res.Replaced {
				if rerr := c.Kernel.Remove(ctx, r.Spec.Interface, res.Previous); rerr != nil {
					err = errors.Join(err, fmt.Errorf("undo: %w", rerr))
				}
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
func (c *Controller) Record(iface string, owners []string, expires time.Time) error {
	return c.withState(func(st *state.State) error {
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
func (c *Controller) withState(fn func(st *state.State) error) error {
	unlock, err := c.Store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := c.Store.Load()
	if err != nil {
		return err
	}
	return fn(&st)
}

// Unthrottle removes the mitigation on iface and restores the root qdisc it
// replaced. An interface that carries egressguard's layout but has no record
// (a lost state file) is cleaned too: the kernel default root comes back.
func (c *Controller) Unthrottle(ctx context.Context, iface string) error {
	return c.withState(func(st *state.State) error { return c.removeLocked(ctx, st, iface) })
}

// UnthrottleAll removes every recorded mitigation and every egressguard
// layout found on the node's interfaces.
func (c *Controller) UnthrottleAll(ctx context.Context) error {
	return c.withState(func(st *state.State) error {
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
	if inst.Ours {
		if err := c.Kernel.Remove(ctx, iface, m.Previous); err != nil {
			return err
		}
	}
	st.Delete(iface)
	if err := c.Store.Save(*st); err != nil {
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
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("control: list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		if slices.Contains(names, ifc.Name) {
			continue
		}
		if inst, err := c.Kernel.Inspect(ctx, ifc.Name); err == nil && inst.Ours {
			names = append(names, ifc.Name)
		}
	}
	return names, nil
}

func isNoDevice(iface string) bool {
	_, err := net.InterfaceByName(iface)
	return err != nil
}
