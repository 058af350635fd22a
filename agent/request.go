package agent

import (
	"context"

	"github.com/egressguard/egressguard/agent/policy"
)

// Request passes a webhook or manual throttle (its rate included) through
// the policy and acts on its decision; force replaces a foreign root qdisc
// (an operator's --force). A malformed request is an error and changes
// nothing. When the kernel or the record refuses the action, the error says
// why and the policy is left as the kernel is (see execute).
func (a *Agent) Request(ctx context.Context, r policy.Request, force bool) (policy.Decision, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var d policy.Decision
	_, err := a.decide(ctx, force, func() ([]policy.Decision, error) {
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
	return a.decide(ctx, false, func() ([]policy.Decision, error) {
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
