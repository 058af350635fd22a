package alerts

import (
	"reflect"
	"testing"
	"time"
)

// requests is what the handler hands to its Sink for a payload: the mapped
// alerts that are not skipped.
func requests(p Payload, node string, watched []string) []Request {
	var reqs []Request
	for _, m := range mapAlerts(p, node, watched) {
		if m.skip == "" {
			reqs = append(reqs, m.req)
		}
	}
	return reqs
}

func TestRequests(t *testing.T) {
	ends := time.Date(2025, 11, 23, 18, 30, 0, 0, time.UTC)
	alert := func(status, fp string, labels ...string) Alert {
		a := Alert{Status: status, Fingerprint: fp, Labels: map[string]string{}}
		for i := 0; i < len(labels); i += 2 {
			a.Labels[labels[i]] = labels[i+1]
		}
		if status == StatusResolved {
			a.EndsAt = ends
		}
		return a
	}
	const act = LabelAction
	watched := []string{"eth1", "eth0", "eth1"}
	for _, tc := range []struct {
		name  string
		alert Alert
		want  []Request // nil: ignored
	}{
		{"firing, instance with port, interface label",
			alert(StatusFiring, "f1", "alertname", "EgressguardThrottleRequested", act, "throttle", "instance", "node1:9466", "interface", "eth0"),
			[]Request{{Fingerprint: "f1", Action: ActionThrottle, Interfaces: []string{"eth0"}, Alertname: "EgressguardThrottleRequested",
				Labels: map[string]string{"alertname": "EgressguardThrottleRequested", act: "throttle", "instance": "node1:9466", "interface": "eth0"}}}},
		{"resolved → release with endsAt",
			alert(StatusResolved, "f2", act, "throttle", "instance", "node1:9466", "interface", "eth0"),
			[]Request{{Fingerprint: "f2", Action: ActionRelease, Interfaces: []string{"eth0"}, EndsAt: ends,
				Labels: map[string]string{act: "throttle", "instance": "node1:9466", "interface": "eth0"}}}},
		{"device label (node_exporter)",
			alert(StatusFiring, "f3", act, "throttle", "instance", "node1:9100", "device", "bond0"),
			[]Request{{Fingerprint: "f3", Action: ActionThrottle, Interfaces: []string{"bond0"},
				Labels: map[string]string{act: "throttle", "instance": "node1:9100", "device": "bond0"}}}},
		{"interface wins over device",
			alert(StatusFiring, "f4", act, "throttle", "node", "node1", "interface", "eth0", "device", "eth1"),
			[]Request{{Fingerprint: "f4", Action: ActionThrottle, Interfaces: []string{"eth0"},
				Labels: map[string]string{act: "throttle", "node": "node1", "interface": "eth0", "device": "eth1"}}}},
		{"no interface label → every watched interface, sorted, once",
			alert(StatusFiring, "f5", act, "throttle", "instance", "NODE1."),
			[]Request{{Fingerprint: "f5", Action: ActionThrottle, Interfaces: []string{"eth0", "eth1"},
				Labels: map[string]string{act: "throttle", "instance": "NODE1."}}}},
		{"node label wins over a matching instance",
			alert(StatusFiring, "f6", act, "throttle", "node", "node2", "instance", "node1:9466"), nil},
		{"node label matches, instance is loopback",
			alert(StatusFiring, "f7", act, "throttle", "node", "node1", "instance", "127.0.0.1:9466", "interface", "eth0"),
			[]Request{{Fingerprint: "f7", Action: ActionThrottle, Interfaces: []string{"eth0"},
				Labels: map[string]string{act: "throttle", "node": "node1", "instance": "127.0.0.1:9466", "interface": "eth0"}}}},
		{"another node", alert(StatusFiring, "f8", act, "throttle", "instance", "node10:9466"), nil},
		{"node name as a prefix of another label is not a match", alert(StatusFiring, "f9", act, "throttle", "instance", "node1x.example.com:9466"), nil},
		{"no node and no instance", alert(StatusFiring, "f10", act, "throttle", "interface", "eth0"), nil},
		{"no action label", alert(StatusFiring, "f11", "instance", "node1:9466", "interface", "eth0"), nil},
		{"unknown action", alert(StatusFiring, "f12", act, "drop", "instance", "node1:9466", "interface", "eth0"), nil},
		{"interface name with a slash", alert(StatusFiring, "f13", act, "throttle", "instance", "node1", "interface", "../../etc"), nil},
		{"interface name too long", alert(StatusFiring, "f14", act, "throttle", "instance", "node1", "interface", "abcdefghijklmnop"), nil},
	} {
		got := requests(Payload{Alerts: []Alert{tc.alert}}, "node1", watched)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestRequestsIPv6InstanceAndNoWatched(t *testing.T) {
	p := Payload{Alerts: []Alert{
		{Status: StatusFiring, Fingerprint: "a", Labels: map[string]string{LabelAction: "throttle", "instance": "[2001:db8::1]:9466", "interface": "eth0"}},
		{Status: StatusFiring, Fingerprint: "b", Labels: map[string]string{LabelAction: "throttle", "instance": "[2001:db8::1]"}},
	}}
	got := requests(p, "2001:db8::1", nil)
	if len(got) != 1 || got[0].Fingerprint != "a" {
		t.Errorf("got %+v, want only a (b names no interface and none is watched)", got)
	}
}

func TestRequestsOncePerFingerprintAndCopiesLabels(t *testing.T) {
	labels := map[string]string{LabelAction: "throttle", "instance": "node1", "interface": "eth0"}
	p := Payload{Alerts: []Alert{
		{Status: StatusFiring, Fingerprint: "a", Labels: labels},
		{Status: StatusFiring, Fingerprint: "a", Labels: labels},
		{Status: StatusFiring, Fingerprint: "b", Labels: labels},
	}}
	got := requests(p, "node1", nil)
	if len(got) != 2 || got[0].Fingerprint != "a" || got[1].Fingerprint != "b" {
		t.Fatalf("got %+v", got)
	}
	got[0].Labels["interface"] = "eth9"
	if labels["interface"] != "eth0" {
		t.Error("Request.Labels aliases the alert's labels")
	}
}

// TestSameHostWithAndWithoutDomainAndPort: an alert's instance is often the
// node_exporter target, an FQDN with a port, while node_name is short (and
// the other way round); IP addresses match only exactly.
func TestSameHostWithAndWithoutDomainAndPort(t *testing.T) {
	for _, tc := range []struct {
		instance, node string
		want           bool
	}{
		{"node1:9100", "node1", true},
		{"node1.dc1.example.com:9100", "node1", true},
		{"NODE1.dc1.example.com.:9100", "node1", true},
		{"node1:9100", "node1.dc1.example.com", true},
		{"node1.dc1.example.com", "node1.dc1.example.com", true},
		{"node1.dc1.example.com", "node1.dc2.example.com", false},
		{"node10.dc1.example.com:9100", "node1", false},
		{"node1", "node1x", false},
		{"10.0.0.1:9100", "10", false},
		{"10.0.0.1:9100", "10.0.0.1", true},
		{"[2001:db8::1]:9100", "2001:db8::1", true},
	} {
		p := Payload{Alerts: []Alert{{Status: StatusFiring, Fingerprint: "f", Labels: map[string]string{
			LabelAction: "throttle", LabelInstance: tc.instance, LabelInterface: "eth0"}}}}
		ms := mapAlerts(p, tc.node, nil)
		if got := len(ms) == 1 && ms[0].skip == ""; got != tc.want {
			t.Errorf("instance %q, node %q: matched %v, want %v", tc.instance, tc.node, got, tc.want)
		}
	}
}
