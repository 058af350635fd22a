package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/internal/netif"
)

// Binder opens the capture of a watched interface on whichever interface
// holds that name now (detect/synwatch in the daemon). It is called with
// the agent's lock held.
type Binder interface {
	// Bind starts a capture on name and returns it, the ifindex it is bound
	// to, and a function that stops it and releases its socket.
	Bind(name string) (c Capture, ifindex int, stop func(), err error)
	// Reconfigure gives the bound captures, and those bound later, a new
	// per-key config and configured owned prefixes (a reload). It checks
	// both before it changes anything; on error nothing changed.
	Reconfigure(cfg detect.Config, owned detect.Owned) error
}

// link is the capture binding of one watched interface. Counters and
// captures follow the ifindex: a name that moves to another interface
// (deleted and recreated, renamed, swapped) is a new binding.
type link struct {
	index int    // the bound ifindex; 0 while blind
	stop  func() // ends the bound capture
	blind string // why nothing is captured; "" while bound
	since time.Time
	// reapply is set while the bound interface still lacks the active
	// mitigation that vanished with its predecessor: a new device has no
	// root qdisc until it is up, so the install is retried at each event
	// and interval until it holds.
	reapply bool
}

// bindAll binds every watched interface at start; one that cannot be bound
// stays blind (and the agent not ready) until a link event brings it.
func (a *Agent) bindAll(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, name := range a.deps.Interfaces {
		a.bind(ctx, name, "start")
	}
}

// OnLink follows one link event for the watched interfaces: the interface
// holding a watched name went away (deleted, or renamed to another name) →
// its capture stops and it is reported blind; a watched name appears on an
// interface other than the bound one → the capture is bound to it and the
// active mitigation, which vanished with the old interface, is installed
// again.
func (a *Agent) OnLink(ctx context.Context, ev netif.LinkEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, name := range a.deps.Interfaces {
		l := a.links[name]
		bound := l != nil && l.index != 0 && l.index == ev.Index
		switch {
		case bound && !ev.Gone && ev.Name == name:
			if l.reapply {
				a.reapply(ctx, name)
			}
		case bound && ev.Gone:
			a.unbind(name, fmt.Sprintf("interface %d was deleted", ev.Index))
		case bound && ev.Name != name:
			a.unbind(name, fmt.Sprintf("interface %d was renamed to %s", ev.Index, ev.Name))
		case !ev.Gone && ev.Name == name && !bound:
			if l != nil && l.index != 0 {
				// The name moved while the old interface still exists
				// (a swap): the old binding counts for someone else now.
				a.unbind(name, fmt.Sprintf("the name moved from interface %d to %d", l.index, ev.Index))
			}
			a.bind(ctx, name, "link event")
		}
	}
}

// unbind stops name's capture and marks it blind with why.
func (a *Agent) unbind(name, why string) {
	l := a.links[name]
	if l == nil {
		l = &link{}
		a.links[name] = l
	}
	if l.stop != nil {
		l.stop()
	}
	// The detector keeps its state: a flood verdict holds through the gap
	// instead of reading clean and releasing the mitigation.
	delete(a.deps.Captures, name)
	delete(a.drops, name)
	l.index, l.stop, l.blind, l.since, l.reapply = 0, nil, why, a.now(), false
	a.metrics.blind.WithLabelValues(name).Set(1)
	_, mitigated := a.engineMitigation(name)
	a.log.Warn("watched interface blind", "interface", name, "why", why, "mitigated", mitigated)
}

// bind (re)starts name's capture on the interface that holds the name now
// and re-installs name's active mitigation there.
func (a *Agent) bind(ctx context.Context, name, cause string) {
	if a.deps.Binder == nil {
		return
	}
	l := a.links[name]
	if l == nil {
		l = &link{since: a.now()}
		a.links[name] = l
	}
	c, idx, stop, err := a.deps.Binder.Bind(name)
	if err != nil {
		if l.blind == "" {
			l.since = a.now()
		}
		l.blind = fmt.Sprintf("no capture: %v", err)
		a.metrics.blind.WithLabelValues(name).Set(1)
		a.log.Warn("watched interface blind", "interface", name, "why", l.blind)
		return
	}
	wasBlind, blindFor := l.blind != "", a.now().Sub(l.since)
	l.index, l.stop, l.blind = idx, stop, ""
	a.deps.Captures[name] = c
	a.metrics.blind.WithLabelValues(name).Set(0)
	if cause == "start" {
		return
	}
	if wasBlind {
		a.log.Info("watched interface back", "interface", name, "ifindex", idx, "blind_seconds", blindFor.Seconds())
	} else {
		a.log.Info("watched interface rebound", "interface", name, "ifindex", idx)
	}
	if _, ok := a.engineMitigation(name); ok {
		l.reapply = true
		a.reapply(ctx, name)
	}
}

// reapply installs name's active mitigation on the interface now bound to
// the name; on failure it stays pending for the next event or interval.
func (a *Agent) reapply(ctx context.Context, name string) {
	l := a.links[name]
	m, ok := a.engineMitigation(name)
	if !ok {
		l.reapply = false
		return
	}
	spec := a.spec(m)
	if _, err := a.ctl.Install(ctx, control.Request{Spec: spec, Reason: m.Reason, Owners: m.Owners, Expires: m.Expires}); err != nil {
		a.log.Debug("mitigation not re-applied yet", "interface", name, "ifindex", l.index, "err", err)
		return
	}
	l.reapply = false
	a.log.Info("mitigation re-applied", "interface", name, "ifindex", l.index, "scope", m.Scope, "sources", m.Sources, "expires", m.Expires)
}

// retryReapply runs each interval for the interfaces still waiting.
func (a *Agent) retryReapply(ctx context.Context) {
	for _, name := range a.deps.Interfaces {
		if l := a.links[name]; l != nil && l.reapply {
			a.reapply(ctx, name)
		}
	}
}

// blindness lists the watched interfaces the agent cannot see, each as
// "name: why (since …)"; /readyz is not ready while there is any.
func (a *Agent) blindness() []string {
	var out []string
	for _, name := range a.deps.Interfaces {
		if l := a.links[name]; l != nil && l.blind != "" {
			out = append(out, fmt.Sprintf("%s: blind since %s: %s", name, l.since.UTC().Format(time.RFC3339), l.blind))
		}
	}
	slices.Sort(out)
	return out
}

// blindReason is why name is blind, "" when it is captured.
func (a *Agent) blindReason(name string) string {
	if l := a.links[name]; l != nil {
		return l.blind
	}
	return ""
}

// readiness answers /readyz: ready once reconciled and while every watched
// interface is captured; otherwise the reasons, one per line.
func (a *Agent) readiness() (bool, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.ready {
		return false, "reconciling"
	}
	if b := a.blindness(); len(b) > 0 {
		return false, strings.Join(b, "\n")
	}
	return true, "ready"
}
