package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/shaper"
)

// Reconcile makes the kernel match the state file at start: expired
// mitigations are removed, missing or half-installed ones reinstalled, and an
// egressguard layout with no record (a crash between install and record) is
// removed. Foreign root qdiscs are left alone and reported.
func (a *Agent) Reconcile(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	st, err := a.ctl.Store.Load()
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
		spec := a.spec(m.Interface, m.Scope, m.Sources, m.Ports, m.RateBps)
		if _, err := a.ctl.Install(ctx, control.Request{Spec: spec, Reason: m.Reason, Owners: m.Owners, Expires: m.Expires}); err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", m.Interface, err))
			continue
		}
		adopt = append(adopt, policy.Mitigation{
			Interface: m.Interface, Scope: m.Scope, Sources: m.Sources, Ports: m.Ports, RateBps: m.RateBps,
			Reason: m.Reason, Owners: m.Owners, Since: m.Since, Expires: m.Expires,
		})
		a.metrics.expiry.WithLabelValues(m.Interface).Set(float64(m.Expires.Unix()))
	}
	if err := a.engine.Adopt(adopt); err != nil {
		errs = append(errs, err)
	}
	a.refreshActive()
	status, err := a.ctl.Status(ctx, a.cfg.Mode)
	if err == nil {
		for _, name := range status.Unrecorded {
			a.log.Warn("reconcile: removing an egressguard layout with no record (interrupted install)", "interface", name)
			if err := a.ctl.Unthrottle(ctx, name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, name := range a.deps.Interfaces {
		if inst, err := a.deps.Kernel.Inspect(ctx, name); err == nil && !inst.Ours && !shaper.IsKernelDefaultRoot(inst.RootKind) {
			a.log.Warn("foreign root qdisc left alone; a throttle here needs --force", "interface", name, "qdisc", inst.RootKind)
		}
	}
	a.ready = true
	return errors.Join(errs...)
}
