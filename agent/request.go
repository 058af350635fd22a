package agent

import (
	"context"
	"fmt"

	"github.com/egressguard/egressguard/agent/policy"
)

// Request passes a webhook or manual throttle (its rate included) through
// the policy and acts on its decision; force replaces a foreign root qdisc
// (an operator's --force). A malformed request is an error and changes
// nothing.
func (a *Agent) Request(ctx context.Context, r policy.Request, force bool) (policy.Decision, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, err := a.engine.Claim(a.now(), r)
	if err != nil {
		return policy.Decision{}, err
	}
	a.execute(ctx, []policy.Decision{d}, force)
	if d.Action != policy.ActionRefuse {
		if _, ok := a.engineMitigation(r.Interface); !ok {
			return d, fmt.Errorf("%s: the kernel refused the throttle; see the agent's log", r.Interface)
		}
	}
	return d, nil
}

// Release drops owner id's claim on iface ("" = every owner; iface "" =
// every interface) and acts on what follows.
func (a *Agent) Release(ctx context.Context, id, iface string) []policy.Decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	ds := a.engine.Release(a.now(), id, iface)
	a.execute(ctx, ds, false)
	return ds
}

// ReleaseAll is `unthrottle --all`: every owner on every interface, and any
// egressguard layout without a record.
func (a *Agent) ReleaseAll(ctx context.Context) error {
	a.Release(ctx, "", "")
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctl.UnthrottleAll(ctx)
}
