package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
)

// Reconcile makes the kernel match the state file at start: an unreadable
// file is kept aside and the record rebuilt from the kernel, records from a
// wrong clock are clamped, expired mitigations are removed, missing or
// half-installed ones reinstalled, and an egressguard layout with no record
// (a crash between install and record) is removed. Foreign root qdiscs are
// left alone and reported. The agent is ready afterwards even when some of
// this failed: the errors are returned for the log, and repair retries on
// every interval.
func (a *Agent) Reconcile(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	defer func() { a.ready = true }()
	now := a.now()
	st, err := a.ctl.LoadClamped(ctx, time.Duration(a.cfg.Throttle.MaxTTL))
	if err != nil {
		return err
	}
	var adopt []policy.Mitigation
	var errs []error
	for _, m := range st.Mitigations {
		if m.Expired(now) {
			a.log.Info("reconcile: removing expired mitigation", "interface", m.Interface, "expired", m.Expires)
			if err := a.ctl.Unthrottle(ctx, m.Interface); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		pm := policy.Mitigation{
			Interface: m.Interface, Scope: m.Scope, Sources: m.Sources, Protocols: m.Protocols, Ports: m.Ports,
			RateBps: m.RateBps, Reason: m.Reason, Owners: m.Owners, Since: m.Since, Expires: m.Expires,
		}
		if _, err := a.ctl.Install(ctx, control.Request{Spec: a.spec(pm), Reason: m.Reason, Owners: m.Owners, Expires: m.Expires}); err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", m.Interface, err))
			continue
		}
		adopt = append(adopt, pm)
	}
	if err := a.engine.Adopt(adopt); err != nil {
		errs = append(errs, err)
	}
	a.refreshActive()
	roots, err := a.deps.Kernel.Roots(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for name, root := range roots {
		if _, ok := st.Find(name); !ok && root.Ours {
			a.log.Warn("reconcile: removing an egressguard layout with no record (interrupted install)", "interface", name)
			if err := a.ctl.Unthrottle(ctx, name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
