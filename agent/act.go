package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
)

// execute carries out the policy's decisions, in order. A decision is done only when
// the kernel and the state file agree. When the kernel refuses, the policy
// is put back to match what the kernel still holds, and the kernel's error
// is returned; when the kernel changed but the record could not be written
// (control.ErrRecord), the policy keeps what the kernel holds and repair
// rewrites the record on the next interval. Errors are logged and counted.
func (a *Agent) execute(ctx context.Context, ds []policy.Decision, before policy.Snapshot) error {
	var errs []error
	for _, d := range ds {
		err := a.act(ctx, d)
		if err == nil {
			continue
		}
		errs = append(errs, err)
		a.metrics.refused.WithLabelValues("error").Inc()
		a.log.Error(string(d.Action)+" failed", "interface", d.Interface, "err", err)
		if errors.Is(err, control.ErrRecord) {
			a.recordStale = true
		} else {
			a.engine.RestoreInterface(before, d.Interface)
		}
	}
	a.refreshActive()
	return errors.Join(errs...)
}

// decide runs one policy call and carries out its decisions (see execute).
func (a *Agent) decide(ctx context.Context, call func() ([]policy.Decision, error)) ([]policy.Decision, error) {
	before := a.engine.Snapshot()
	ds, err := call()
	if err != nil {
		return nil, err
	}
	return ds, a.execute(ctx, ds, before)
}

// act carries out one decision.
func (a *Agent) act(ctx context.Context, d policy.Decision) error {
	switch d.Action {
	case policy.ActionThrottle, policy.ActionUpdate:
		m := d.Mitigation
		spec := a.spec(m)
		_, err := a.ctl.Install(ctx, control.Request{Spec: spec, Reason: m.Reason, Owners: m.Owners, Expires: m.Expires})
		if err != nil {
			return fmt.Errorf("%s %s: %w", d.Action, m.Interface, err)
		}
		a.metrics.actions.WithLabelValues(string(d.Action), string(d.Reason)).Inc()
		a.log.Info("mitigation "+string(d.Action), "interface", m.Interface, "scope", m.Scope, "sources", m.Sources,
			"rate_bps", spec.Rate, "reason", d.Reason, "owner", d.Owner, "expires", m.Expires, "detail", d.Detail)
	case policy.ActionKeep:
		if err := a.ctl.Record(ctx, d.Mitigation.Interface, d.Mitigation.Owners, d.Mitigation.Expires); err != nil {
			// The kernel is as decided either way; only the record lags.
			return fmt.Errorf("record %s: %w: %w", d.Interface, control.ErrRecord, err)
		}
	case policy.ActionRelease:
		err := a.ctl.Unthrottle(ctx, d.Interface)
		if err != nil && !errors.Is(err, control.ErrNotThrottled) {
			return fmt.Errorf("release %s: %w", d.Interface, err)
		}
		delete(a.drops, d.Interface)
		a.metrics.actions.WithLabelValues("release", string(d.Reason)).Inc()
		a.metrics.expiry.DeleteLabelValues(d.Interface)
		a.log.Info("mitigation released", "interface", d.Interface, "cause", d.Cause, "owner", d.Owner, "detail", d.Detail)
	case policy.ActionRefuse:
		a.metrics.refused.WithLabelValues(string(d.RefusedBecause)).Inc()
		a.log.Warn("action refused", "interface", d.Interface, "refused_because", d.RefusedBecause,
			"reason", d.Reason, "sources", d.Sources, "detail", d.Detail)
	case policy.ActionAlert:
		a.log.Warn("mitigation alert", "interface", d.Interface, "cause", d.Cause, "detail", d.Detail)
	}
	return nil
}

// refreshActive sets the active-mitigation gauges from the engine.
func (a *Agent) refreshActive() {
	a.metrics.active.Reset()
	for _, m := range a.engine.Mitigations() {
		a.metrics.active.WithLabelValues(m.Interface, string(m.Reason), string(m.Scope)).Set(1)
		a.metrics.expiry.WithLabelValues(m.Interface).Set(float64(m.Expires.Unix()))
	}
}
