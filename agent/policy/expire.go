package policy

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Expire drops the claims whose TTL has run out, releasing or narrowing
// their mitigations, and releases every mitigation that has reached
// Since+MaxTTL whatever its owners ask, with an alert: a mitigation that old
// needs a human. Step calls it first; the agent calls it on its own only
// when it has no observations to step.
func (e *Engine) Expire(now time.Time) []Decision {
	var ds []Decision
	for _, iface := range slices.Sorted(maps.Keys(e.mits)) {
		m := e.mits[iface]
		if capAt := m.since.Add(e.cfg.MaxTTL); !now.Before(capAt) {
			v := m.view()
			delete(e.mits, iface)
			detail := fmt.Sprintf("mitigation on %s since %s reached throttle.max_ttl %s", iface, m.since.Format(time.RFC3339), e.cfg.MaxTTL)
			rel := decision(ActionRelease, v, v.Reason, "")
			rel.Cause, rel.Detail = CauseMaxTTL, detail+"; released"
			alert := decision(ActionAlert, v, v.Reason, "")
			alert.Cause, alert.Detail = CauseMaxTTL, detail+"; a repeated request or a flood still seen throttles afresh within the budget"
			ds = append(ds, rel, alert)
			continue
		}
		ds = append(ds, e.drop(iface, func(c claim) bool { return !now.Before(c.expires) }, "", CauseTTL)...)
	}
	return ds
}

// drop removes the claims on iface that match gone, reporting the release
// of the mitigation when none is left, or its narrowing or a keep when some
// are. owner names who asked, if anyone did.
func (e *Engine) drop(iface string, gone func(claim) bool, owner string, cause Cause) []Decision {
	m := e.mits[iface]
	if m == nil || !slices.ContainsFunc(m.claims, gone) {
		return nil
	}
	before := m.view()
	left := slices.DeleteFunc(slices.Clone(m.claims), gone)
	if len(left) == 0 {
		delete(e.mits, iface)
		d := decision(ActionRelease, before, before.Reason, owner)
		d.Cause, d.Detail = cause, fmt.Sprintf("release %s (%s)", iface, cause)
		return []Decision{d}
	}
	var leaving []string
	reason := before.Reason
	for _, c := range m.claims {
		if gone(c) {
			leaving = append(leaving, c.owner)
			reason = c.reason
		}
	}
	if len(leaving) > 1 {
		reason = before.Reason
	}
	m.claims = left
	after := m.view()
	d := decision(ActionKeep, after, reason, owner)
	if !sameSpec(before, after) {
		d.Action = ActionUpdate
	}
	if owner == "" && len(leaving) == 1 {
		d.Owner = leaving[0]
	}
	d.Cause, d.Detail = cause, fmt.Sprintf("%v left %s (%s); %v keep it", leaving, iface, cause, after.Owners)
	return []Decision{d}
}
