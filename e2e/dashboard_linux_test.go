package e2e

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/internal/lab"
	"github.com/egressguard/egressguard/internal/labagent"
	"github.com/egressguard/egressguard/rules"
)

// dashboardNonEmpty are the panels whose queries must return series while
// the lab agent throttles a flood; the others may be legitimately empty then
// (no refusal, no ring drop, no evidence bundle yet).
var dashboardNonEmpty = []string{
	"Nodes in flood", "Nodes throttling", "Agents up", "Top nodes by SYN out", "Transmit", "Transmit packets",
	"SYN out vs SYN-ACK in", "Verdict", "Active mitigations", "Mitigation expires in", "Throttled traffic sent",
	"Throttled drops", "Action budget left", "Capture ring drops",
}

// dashboardRateWindow is the dashboard's $__rate_interval against the lab's
// 1 s scrapes: a window that holds only samples taken while throttled.
const dashboardRateWindow = "10s"

// TestDashboardDuringFlood runs the lab agent, a Prometheus scraping it every
// second with the shipped rules, and a SYN flood. While the agent throttles
// it checks that every egressguard_ series the shipped rules and dashboard
// read is on the agent's /metrics, and evaluates every dashboard query
// through Prometheus's API: each must succeed, the panels of
// dashboardNonEmpty must return series, and the figures are logged.
func TestDashboardDuringFlood(t *testing.T) {
	promBin := loopTool(t, "prometheus", "prometheus")
	tools, err := lab.BuildTools()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() // before the lab: removed after the lab has ended the agent
	l := lab.NewT(t, "egl", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cfg := labagent.Config(dir)
	lp := &alertLoop{t: t, ctx: ctx, l: l, c: lab.HTTPClient(l.Node), node: cfg.NodeName}
	rulesDir := filepath.Join(dir, "rules")
	if err := rules.Write(rulesDir); err != nil {
		t.Fatal(err)
	}
	promCfg := filepath.Join(dir, "prometheus.yml")
	lp.write(promCfg, loopPrometheusConfig(t, rulesDir, cfg.NodeName))
	agent, err := labagent.New(l, tools.Egressguard, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lp.agent = agent
	if err := agent.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Stop()
		if t.Failed() {
			t.Logf("agent output:\n%s", tail(agent.Proc.Output(), 60))
		}
	})
	lp.start(promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "prometheus"),
		"--web.listen-address="+loopPrometheusAddr, "--log.level=error")
	lp.waitUntil("Prometheus ready", 100*time.Millisecond, func() bool {
		return lp.get("http://"+loopPrometheusAddr+"/-/ready", nil) == nil
	})

	// Scraped before the flood, so the counters' first samples are the zeros
	// the throttle then raises.
	lp.waitUntil("Prometheus scraping the agent", 100*time.Millisecond, func() bool {
		res, err := lp.promQuery(`up{job="egressguard"} == 1`)
		return err == nil && len(res) == 1
	})
	lp.start(tools.Synflood, "-duration", "90s")
	lp.waitUntil("the detector's throttle", 100*time.Millisecond, func() bool {
		_, ok := lp.mitigation()
		return ok
	})
	// Rate windows of 10 s (Grafana's $__rate_interval for a 1 s scrape is
	// 4 s and up) filled with samples taken while throttled.
	time.Sleep(15 * time.Second)

	text, err := agent.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	used, err := rules.SeriesNames()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range used {
		if rules.IsAgentSeries(name) && !strings.Contains(text, "\n"+name+"{") && !strings.Contains(text, "\n"+name+" ") {
			t.Errorf("%s is read by the shipped rules or dashboard but not on the running agent's /metrics", name)
		}
	}

	qs, err := rules.DashboardQueries()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, q := range qs {
		expr := q.ExpandRate(dashboardRateWindow)
		res, err := lp.promQuery(expr)
		if err != nil {
			t.Errorf("panel %q: %s: %v", q.Panel, expr, err)
			continue
		}
		if len(res) > 0 {
			seen[q.Panel] = true
		}
		t.Logf("panel %q: %s\n%s", q.Panel, expr, strings.Join(res, "\n"))
	}
	// The throttle is older than the rate window: its count over a minute.
	if res, err := lp.promQuery(`sum by (action, reason) (increase(egressguard_actions_total[1m])) > 0`); err == nil {
		t.Logf("actions over the last minute:\n%s", strings.Join(res, "\n"))
		if len(res) == 0 {
			t.Error("no action in the last minute although the agent throttled")
		}
	}
	for _, p := range dashboardNonEmpty {
		if !seen[p] {
			t.Errorf("panel %q returned no series during the flood", p)
		}
	}
}

// promQuery evaluates expr now on the lab's Prometheus and returns one line
// per series: its labels (without the job and the lab's node label) and value.
func (lp *alertLoop) promQuery(expr string) ([]string, error) {
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := lp.get("http://"+loopPrometheusAddr+"/api/v1/query?query="+url.QueryEscape(expr), &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("status %s: %s", r.Status, r.Error)
	}
	var out []string
	for _, s := range r.Data.Result {
		var labels []string
		for k, v := range s.Metric {
			if k != "job" && k != "node" {
				labels = append(labels, k+"="+v)
			}
		}
		sort.Strings(labels)
		out = append(out, fmt.Sprintf("  {%s} %v", strings.Join(labels, ","), s.Value[1]))
	}
	slices.Sort(out)
	return out, nil
}
