package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/internal/lab"
	"github.com/egressguard/egressguard/internal/labagent"
	"github.com/egressguard/egressguard/shaper"
)

// TestUplinkDeletedAndRecreated deletes the watched uplink while a flood
// runs and its throttle is active, and recreates it under the same name (a
// new ifindex) two seconds later: while it is gone /readyz answers 503
// naming it and egressguard_interface_blind is 1; once it is back the
// agent is ready again, the throttle is back on the new interface (tc as
// the oracle) and the flood that goes on is seen and held to the rate.
func TestUplinkDeletedAndRecreated(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.startAgent()
	p := e.poll(250 * time.Millisecond)
	start := time.Now()
	fl := e.flood(e.lab.Node, 40*time.Second)
	defer fl.Kill()
	p.waitFor(t, "throttle", start, 10*time.Second, func(s sample) bool { return s.mitigated })

	deleted := time.Now()
	if err := e.lab.DeleteUplink(); err != nil {
		t.Fatal(err)
	}
	notReady, body := e.waitReadyz(t, http.StatusServiceUnavailable, 5*time.Second)
	t.Logf("deleted: /readyz 503 after %.2f s: %q", notReady.Sub(deleted).Seconds(), body)
	if !strings.Contains(body, lab.Uplink+": blind since") {
		t.Errorf("/readyz while deleted: %q, want it to name %s", body, lab.Uplink)
	}
	if v := e.metricValue("egressguard_interface_blind", map[string]string{"interface": lab.Uplink}); v != 1 {
		t.Errorf("egressguard_interface_blind while deleted = %v, want 1", v)
	}
	time.Sleep(2 * time.Second)

	recreated := time.Now()
	if err := e.lab.RecreateUplink(); err != nil {
		t.Fatal(err)
	}
	ready, _ := e.waitReadyz(t, http.StatusOK, 10*time.Second)
	back := e.waitLayout(t, 10*time.Second)
	t.Logf("blind for %.2f s (deleted → ready again); throttle back %.2f s after the recreate, ready %.2f s after it",
		ready.Sub(deleted).Seconds(), back.Sub(recreated).Seconds(), ready.Sub(recreated).Seconds())
	if v := e.metricValue("egressguard_interface_blind", map[string]string{"interface": lab.Uplink}); v != 0 {
		t.Errorf("egressguard_interface_blind after the recreate = %v, want 0", v)
	}
	if n := len(e.agent.LogEntries("watched interface blind")); n == 0 {
		t.Error("no \"watched interface blind\" log line")
	}
	if n := len(e.agent.LogEntries("mitigation re-applied")); n != 1 {
		t.Errorf("%d \"mitigation re-applied\" log lines, want 1", n)
	}

	// The flood goes on: the capture on the new interface sees it (the
	// verdict returns to flood) and the throttled class holds it.
	since := time.Now()
	s := p.waitFor(t, "flood seen on the new interface", since, 10*time.Second, func(s sample) bool {
		return s.verdict == "flood" && s.iface.SynOutPps > 0 && s.iface.Blind == ""
	})
	p.Stop()
	t.Logf("flood seen again %.2f s after the recreate: syn_out %.0f/s", s.at.Sub(recreated).Seconds(), s.iface.SynOutPps)
	sent0, at0 := e.throttledSent()
	time.Sleep(3 * time.Second)
	sent1, at1 := e.throttledSent()
	egress := float64(sent1-sent0) * 8 / at1.Sub(at0).Seconds()
	t.Logf("throttled class on the new %s: %.3f Mbit/s", lab.Uplink, egress/1e6)
	if egress > 1.2*rateBps {
		t.Errorf("throttled egress %.3f Mbit/s on the new interface: want at most 1.2 × %.1f", egress/1e6, rateBps/1e6)
	}
}

// waitReadyz polls /readyz until it answers code and returns when, with
// the body.
func (e *env) waitReadyz(t *testing.T, code int, limit time.Duration) (time.Time, string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := e.agent.HTTP.Get("http://" + labagent.Listen + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == code {
				return time.Now(), strings.TrimSpace(string(b))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/readyz never answered %d within %s", code, limit)
	return time.Time{}, ""
}

// waitLayout polls tc until up0 holds egressguard's layout: the classifier
// on its egress hook and the throttled class on its shaping device.
func (e *env) waitLayout(t *testing.T, limit time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, ok := e.classesOK(); ok {
			return time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no throttle on the recreated %s within %s", lab.Uplink, limit)
	return time.Time{}
}

func (e *env) classesOK() (map[string]lab.ClassStat, bool) {
	f, err := e.lab.Exec(e.ctx, e.lab.Node, "tc", "filter", "show", "dev", lab.Uplink, "egress", "prio", "233")
	if err != nil || !strings.Contains(f, "handle 0xe9") {
		return nil, false
	}
	cs, err := e.lab.Classes(e.ctx, e.lab.Node, shaper.ShapingDevice(lab.Uplink))
	if err != nil {
		return nil, false
	}
	_, ok := cs["e9:10"]
	return cs, ok
}
