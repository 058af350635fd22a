package agent

import (
	"context"
	"slices"
	"time"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/agent/state"
)

// renewEvery is how much a renewed expiry must have moved before it is
// written to the state file: a crash then loses at most this much TTL.
const renewEvery = time.Minute

// repair runs after every interval's decisions and makes the policy, the
// kernel and the state file agree again, from one dump of the kernel's root
// qdiscs and one read of the state file (both skipped while nothing is
// mitigated and no record is known to lag):
//   - drift: a mitigation whose layout is gone or incomplete (shaping device,
//     classifier) is reinstalled beside whatever root qdisc the interface
//     has, which the clsact layout never touches, so an operator's own root
//     is kept; logged and counted;
//   - a record that does not say what the policy holds (an update or a
//     renewal the state file missed) is rewritten;
//   - a record the policy no longer holds (a release the state file missed,
//     say on a full disk) is released again, which removes any layout left.
func (a *Agent) repair(ctx context.Context) {
	ms := a.engine.Mitigations()
	if len(ms) == 0 && !a.recordStale {
		return
	}
	roots, err := a.deps.Kernel.Roots(ctx)
	if err != nil {
		a.log.Warn("repair: read root qdiscs", "err", err)
		return
	}
	st, err := a.ctl.Load(ctx)
	if err != nil {
		a.log.Warn("repair: read the state file", "err", err)
		return
	}
	a.recordStale = false
	before := a.engine.Snapshot()
	var ds []policy.Decision
	for _, m := range ms {
		root, present := roots[m.Interface]
		if !present {
			continue // the interface is gone; its mitigation expires with its TTL
		}
		rec, recorded := st.Find(m.Interface)
		switch {
		case !root.Intact:
			// The layout never holds the root qdisc, so whatever root an
			// operator set up is no reason to give the throttle up.
			a.metrics.drift.WithLabelValues(m.Interface, "reinstall").Inc()
			a.log.Warn("drift: the egressguard layout is gone; reinstalling it", "interface", m.Interface, "root", root.RootKind)
			ds = append(ds, repairDecision(policy.ActionUpdate, m, "reinstall after drift"))
		case !recorded || !a.recordMatches(rec, m):
			a.metrics.drift.WithLabelValues(m.Interface, "record").Inc()
			a.log.Warn("repair: the state file does not hold the mitigation in force; rewriting it", "interface", m.Interface, "recorded", recorded)
			ds = append(ds, repairDecision(policy.ActionUpdate, m, "rewrite the record"))
		case m.Expires.Sub(rec.Expires) >= renewEvery:
			ds = append(ds, repairDecision(policy.ActionKeep, m, "renewal"))
		}
	}
	for _, rec := range st.Mitigations {
		if _, held := a.engineMitigation(rec.Interface); !held {
			a.metrics.drift.WithLabelValues(rec.Interface, "record").Inc()
			a.log.Warn("repair: the state file holds a mitigation the agent released; releasing it again", "interface", rec.Interface)
			ds = append(ds, policy.Decision{Action: policy.ActionRelease, Interface: rec.Interface, Detail: "release a stale record"})
		}
	}
	if err := a.execute(ctx, ds, before); err != nil {
		a.recordStale = true
	}
}

// repairDecision re-applies or re-records m as it stands in the policy.
func repairDecision(action policy.Action, m policy.Mitigation, detail string) policy.Decision {
	return policy.Decision{Action: action, Interface: m.Interface, Scope: m.Scope, Sources: m.Sources, Ports: m.Ports,
		Reason: m.Reason, Detail: detail, Mitigation: m}
}

// recordMatches reports whether rec records what m installs under the
// current config.
func (a *Agent) recordMatches(rec state.Mitigation, m policy.Mitigation) bool {
	spec := a.spec(m)
	return rec.Scope == spec.Scope && slices.Equal(rec.Sources, spec.Sources) && slices.Equal(rec.Protocols, spec.Protocols) &&
		slices.Equal(rec.Ports, spec.Ports) &&
		rec.RateBps == spec.Rate && slices.Equal(rec.Owners, m.Owners)
}
