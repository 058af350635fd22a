package agent

import (
	"context"
	"fmt"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/internal/netif"
	"github.com/egressguard/egressguard/shaper"
)

// Request passes a webhook or manual throttle (its rate included) through
// the policy and acts on its decision. A malformed request is an error and changes
// nothing. When the kernel or the record refuses the action, the error says
// why and the policy is left as the kernel is (see execute).
func (a *Agent) Request(ctx context.Context, r policy.Request) (policy.Decision, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var d policy.Decision
	_, err := a.decide(ctx, func() ([]policy.Decision, error) {
		// An interface the agent does not watch is refused before the
		// policy sees it: the loopback, or a bridge an alert's device label
		// names. A VM port is never watched itself (its bridge's uplink
		// is): it only has to carry traffic that leaves the node.
		if err := a.checkTarget(r); err != nil {
			d = policy.Decision{Action: policy.ActionRefuse, Interface: r.Interface, Reason: r.Reason, Owner: r.ID,
				RefusedBecause: policy.RefusedTarget, Detail: err.Error()}
			return []policy.Decision{d}, nil
		}
		var err error
		d, err = a.engine.Claim(a.now(), r)
		return []policy.Decision{d}, err
	})
	return d, err
}

// Release drops owner id's claim on iface ("" = every owner; iface "" =
// every interface) and acts on what follows. The error is that of the
// releases the kernel or the record refused.
func (a *Agent) Release(ctx context.Context, id, iface string) ([]policy.Decision, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.decide(ctx, func() ([]policy.Decision, error) {
		return a.engine.Release(a.now(), id, iface), nil
	})
}

// ReleaseAll is `unthrottle --all`: every owner on every interface, and any
// egressguard layout without a record.
func (a *Agent) ReleaseAll(ctx context.Context) error {
	if _, err := a.Release(ctx, "", ""); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctl.UnthrottleAll(ctx)
}

// checkTarget refuses a request on an interface the agent may not throttle
// (see netif.CheckWatched and netif.LocalOnly).
func (a *Agent) checkTarget(r policy.Request) error {
	if r.Scope != shaper.ScopePort {
		return netif.CheckWatched(r.Interface, a.deps.Interfaces)
	}
	why, err := netif.LocalOnly(r.Interface)
	if err != nil {
		return err
	}
	if why != "" {
		return fmt.Errorf("%q: %w: %s", r.Interface, netif.ErrNotTarget, why)
	}
	return nil
}
