package agent

import (
	"context"
	"errors"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
)

// execute carries out the policy's decisions; force replaces a foreign root
// qdisc (an operator's --force). A kernel failure is logged and counted, and
// the mitigation is dropped from the policy so that it matches the kernel.
func (a *Agent) execute(ctx context.Context, ds []policy.Decision, force bool) {
	for _, d := range ds {
		switch d.Action {
		case policy.ActionThrottle, policy.ActionUpdate:
			m := d.Mitigation
			spec := a.spec(m.Interface, m.Scope, m.Sources, m.Ports, m.RateBps)
			_, err := a.ctl.Install(ctx, control.Request{Spec: spec, Reason: m.Reason, Owners: m.Owners, Expires: m.Expires, Force: force})
			if err != nil {
				a.log.Error("throttle failed", "interface", m.Interface, "err", err)
				a.metrics.refused.WithLabelValues("error").Inc()
				if d.Action == policy.ActionThrottle {
					a.engine.Release(a.now(), "", m.Interface)
				}
				continue
			}
			a.metrics.actions.WithLabelValues(string(d.Action), string(d.Reason)).Inc()
			a.log.Info("mitigation "+string(d.Action), "interface", m.Interface, "scope", m.Scope, "sources", m.Sources,
				"reason", d.Reason, "owner", d.Owner, "expires", m.Expires, "detail", d.Detail)
		case policy.ActionKeep:
			if err := a.ctl.Record(d.Mitigation.Interface, d.Mitigation.Owners, d.Mitigation.Expires); err != nil {
				a.log.Warn("record mitigation", "interface", d.Interface, "err", err)
			}
		case policy.ActionRelease:
			err := a.ctl.Unthrottle(ctx, d.Interface)
			if err != nil && !errors.Is(err, control.ErrNotThrottled) {
				a.log.Error("release failed", "interface", d.Interface, "err", err)
				continue
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
	}
	a.refreshActive()
}

// refreshActive sets the active-mitigation gauges from the engine.
func (a *Agent) refreshActive() {
	a.metrics.active.Reset()
	for _, m := range a.engine.Mitigations() {
		a.metrics.active.WithLabelValues(m.Interface, string(m.Reason)).Set(1)
		a.metrics.expiry.WithLabelValues(m.Interface).Set(float64(m.Expires.Unix()))
	}
}

// persistRenewals writes renewed expiries to the state file, at most once a
// minute per mitigation: a crash then loses at most a minute of TTL.
func (a *Agent) persistRenewals() {
	ms := a.engine.Mitigations()
	if len(ms) == 0 {
		return // the common case: no file read every interval
	}
	st, err := a.ctl.Store.Load()
	if err != nil {
		return
	}
	for _, m := range ms {
		rec, ok := st.Find(m.Interface)
		if !ok || m.Expires.Sub(rec.Expires) < time.Minute {
			continue
		}
		if err := a.ctl.Record(m.Interface, m.Owners, m.Expires); err != nil {
			a.log.Warn("record renewal", "interface", m.Interface, "err", err)
		}
	}
}
