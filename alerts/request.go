package alerts

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/egressguard/egressguard/internal/netif"
)

// Label names the mapping reads.
const (
	// LabelAction marks an alert that asks the agent to act; its only value is "throttle".
	LabelAction = "egressguard_action"
	// LabelNode names the node an alert is for; it takes precedence over LabelInstance.
	LabelNode = "node"
	// LabelInstance is the scrape target, "host:port"; its host part names the node.
	LabelInstance = "instance"
	// LabelInterface and LabelDevice name the interface to throttle (egressguard's
	// and node_exporter's spelling); without them every watched interface is meant.
	LabelInterface = "interface"
	LabelDevice    = "device"
)

// Action is what a Request asks the agent to do.
type Action string

// Actions: a firing alert asks for a throttle, its resolution for a release.
const (
	ActionThrottle Action = "throttle"
	ActionRelease  Action = "release"
)

// Request is one alert that asks this node's agent to throttle or release.
type Request struct {
	Fingerprint string            // the alert's fingerprint: the idempotency key
	Action      Action            // throttle (firing) or release (resolved)
	Interfaces  []string          // sorted, never empty
	Alertname   string            // the alert's alertname label
	Labels      map[string]string // a copy of the alert's labels
	EndsAt      time.Time         // zero while firing
}

// mapped is one alert of a payload and what it maps to.
type mapped struct {
	alert Alert
	req   Request
	skip  string // why the alert is not a request for this agent; "" when it is
}

// mapAlerts maps every alert of p to a request meant for node, or to the
// reason it is skipped: a request comes from an alert labelled
// egressguard_action="throttle" whose node label (or, without one, the host
// part of its instance label) equals node, case-insensitively. The
// interfaces come from the interface or device label, else they are every
// watched interface. Alerts are taken in payload order, each fingerprint
// once.
func mapAlerts(p Payload, node string, watched []string) []mapped {
	out := make([]mapped, 0, len(p.Alerts))
	seen := map[string]bool{}
	for _, a := range p.Alerts {
		req, skip := requestFor(a, node, watched)
		if skip == "" && seen[req.Fingerprint] {
			skip = "fingerprint repeated in the payload"
		}
		if skip == "" {
			seen[req.Fingerprint] = true
		}
		out = append(out, mapped{alert: a, req: req, skip: skip})
	}
	return out
}

// requestFor maps one alert; a non-empty skip says why it is not for this agent.
func requestFor(a Alert, node string, watched []string) (req Request, skip string) {
	switch action := a.Labels[LabelAction]; action {
	case string(ActionThrottle):
	case "":
		return Request{}, "no " + LabelAction + " label"
	default:
		return Request{}, fmt.Sprintf("%s %q: want %q", LabelAction, action, ActionThrottle)
	}
	if target, ok := alertNode(a.Labels); !ok {
		return Request{}, "no " + LabelNode + " or " + LabelInstance + " label"
	} else if !sameHost(target, node) {
		return Request{}, fmt.Sprintf("for node %q, not %q", target, node)
	}
	var ifaces []string
	if name := a.Labels[LabelInterface]; name != "" {
		ifaces = []string{name}
	} else if name := a.Labels[LabelDevice]; name != "" {
		ifaces = []string{name}
	} else {
		ifaces = slices.Clone(watched)
	}
	ifaces = slices.Compact(slices.Sorted(slices.Values(ifaces)))
	if len(ifaces) == 0 {
		return Request{}, "no interface label and no watched interface"
	}
	for _, name := range ifaces {
		if netif.ValidName(name) != nil {
			return Request{}, fmt.Sprintf("interface %q: not a Linux interface name", name)
		}
	}
	action := ActionThrottle
	if a.Status == StatusResolved {
		action = ActionRelease
	}
	return Request{
		Fingerprint: a.Fingerprint,
		Action:      action,
		Interfaces:  ifaces,
		Alertname:   a.Labels["alertname"],
		Labels:      maps.Clone(a.Labels),
		EndsAt:      a.EndsAt,
	}, ""
}

// alertNode is the node an alert names: its node label, else its instance's host.
func alertNode(labels map[string]string) (string, bool) {
	if n := labels[LabelNode]; n != "" {
		return n, true
	}
	instance := labels[LabelInstance]
	if instance == "" {
		return "", false
	}
	if host, _, err := net.SplitHostPort(instance); err == nil {
		return host, true
	}
	return strings.TrimSuffix(strings.TrimPrefix(instance, "["), "]"), true
}

// sameHost reports whether an alert's node (a, port already removed) names
// this node (b). Names compare as DNS does: case-insensitively, ignoring a
// final dot. A short name matches a fully qualified one by its first label
// ("node1" matches "node1.dc1.example.com", either way round), since
// node_exporter targets are often FQDNs while node names are short. IP
// addresses match only exactly.
func sameHost(a, b string) bool {
	a, b = strings.TrimSuffix(a, "."), strings.TrimSuffix(b, ".")
	if a == "" || b == "" {
		return false
	}
	if strings.EqualFold(a, b) {
		return true
	}
	if net.ParseIP(a) != nil || net.ParseIP(b) != nil {
		return false
	}
	short, long := a, b
	if strings.Contains(short, ".") {
		short, long = long, short
	}
	first, _, qualified := strings.Cut(long, ".")
	return qualified && !strings.Contains(short, ".") && strings.EqualFold(short, first)
}
