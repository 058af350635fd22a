package agent

import (
	"context"
	"slices"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/egressguard/egressguard/rules"
)

// gather returns the agent's metric families by name.
func gather(t *testing.T, a *Agent) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// TestKernelCountersReadAtScrape: the throttled class's counters and the
// capture's ring drops are _total counters built at scrape time from what
// the kernel (here the fake) holds: absent before a mitigation exists, equal
// to the class statistics while it does, absent again after the release.
func TestKernelCountersReadAtScrape(t *testing.T) {
	a, capt, kern := newTestAgent(t, nil)
	capt.dropped = 7
	ctx := context.Background()
	mfs := gather(t, a)
	for _, name := range []string{"egressguard_throttled_sent_bytes_total", "egressguard_throttled_dropped_packets_total"} {
		if _, ok := mfs[name]; ok {
			t.Errorf("%s exported before any mitigation", name)
		}
	}
	if got := mfs["egressguard_capture_dropped_packets_total"].GetMetric()[0].GetCounter().GetValue(); got != 7 {
		t.Errorf("capture drops %v, want 7", got)
	}
	if got := mfs["egressguard_action_budget_remaining"].GetMetric()[0].GetGauge().GetValue(); got != 6 {
		t.Errorf("budget left %v before any action, want 6 (max_actions_per_hour)", got)
	}

	for range 5 {
		capt.next = flood(150_000)
		a.Tick(ctx)
	}
	if !kern.installed {
		t.Fatal("the flood was not throttled")
	}
	kern.drops = 123_456
	mfs = gather(t, a)
	drops := mfs["egressguard_throttled_dropped_packets_total"]
	if drops.GetType() != dto.MetricType_COUNTER || drops.GetMetric()[0].GetCounter().GetValue() != 123_456 {
		t.Errorf("throttled drops %v, want counter 123456", drops)
	}
	if got := mfs["egressguard_action_budget_remaining"].GetMetric()[0].GetGauge().GetValue(); got != 5 {
		t.Errorf("budget left %v after one throttle, want 5", got)
	}

	for range 10 {
		capt.next = flood(0)
		a.Tick(ctx)
	}
	if kern.installed {
		t.Fatal("not released after the flood")
	}
	if _, ok := gather(t, a)["egressguard_throttled_dropped_packets_total"]; ok {
		t.Error("throttled drops still exported after the release")
	}
}

// TestShippedRulesAndDashboardUseExportedSeries: every egressguard_ series
// a shipped rule or dashboard panel reads is one the agent exports while it
// throttles a flood (the e2e tests check the same against a live agent).
func TestShippedRulesAndDashboardUseExportedSeries(t *testing.T) {
	a, capt, _ := newTestAgent(t, nil)
	for range 5 {
		capt.next = flood(150_000)
		a.Tick(context.Background())
	}
	mfs := gather(t, a)
	used, err := rules.SeriesNames()
	if err != nil {
		t.Fatal(err)
	}
	var checked int
	for _, name := range used {
		if !rules.IsAgentSeries(name) {
			continue
		}
		checked++
		if _, ok := mfs[name]; !ok {
			t.Errorf("%s is read by the shipped rules or dashboard but not exported", name)
		}
	}
	if checked == 0 {
		t.Fatalf("no egressguard_ series found in the rules and dashboard: %v", used)
	}
	if !slices.Contains(used, "egressguard_throttled_dropped_packets_total") {
		t.Error("the dashboard does not show throttled drops")
	}
}
