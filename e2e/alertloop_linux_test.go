package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/internal/lab"
	"github.com/egressguard/egressguard/internal/labagent"
	"github.com/egressguard/egressguard/rules"
)

// Addresses on the node namespace's loopback; the namespace is fresh, so the
// examples' well-known ports are free.
const (
	loopPrometheusAddr   = "127.0.0.1:9090"
	loopAlertmanagerAddr = "127.0.0.1:9093" // as in rules/examples/prometheus.yml
	loopAlert            = "EgressguardThrottleRequested"
	// loopWait bounds each wait of the alert loop; the figures it measures
	// are logged, never asserted.
	loopWait = 40 * time.Second
)

// TestAlertLoop closes the loop of docs/design.md §6 with the real components in the
// lab: a SYN flood from the node makes the agent's flood verdict, Prometheus
// scrapes it and fires the shipped EgressguardThrottleRequested rule,
// Alertmanager (configured from the shipped example) posts it to the agent's
// webhook with the bearer token file, and the agent throttles; when the flood
// stops the alert resolves, Alertmanager sends the resolution and the agent
// releases the mitigation the alert created.
//
// The agent runs in enforce mode, so its own detector throttles first, in the
// very interval whose verdict the rule later reads: the agent has no setting
// in which the detector only alerts while the webhook acts (observe mode
// refuses both). To make the webhook act on the kernel by itself, the test
// plays the operator: as soon as the detector has throttled, `egressguard
// unthrottle` releases it through the agent's socket, which keeps the
// detector out until its flood episode ends (policy.Engine.Release). The
// flood goes on, the verdict stays "flood", and the throttle that follows can
// only come from the webhook: the test checks that its reason is "webhook"
// and its only owner the alert's Alertmanager fingerprint.
//
// The shipped rule waits `for: 1m` and keeps firing for 15m after the last
// flood verdict (max_over_time(...[15m])), durations Prometheus cannot
// override: the test loads a copy of the shipped rule file with that rule's
// `for` at 10s (long enough that the operator's release comes first) and its
// range at 5s, scrapes and evaluates every second, and has Alertmanager group
// for 1s.
func TestAlertLoop(t *testing.T) {
	promBin := loopTool(t, "prometheus", "prometheus")
	amBin := loopTool(t, "prometheus-alertmanager", "prometheus-alertmanager") // Debian's name
	tools, err := lab.BuildTools()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() // before the lab: removed after the lab has ended the agent
	l := lab.NewT(t, "egl", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	started := time.Now()
	cfg := labagent.Config(dir) // enforce, node_name lab-node, interfaces [up0]
	cfg.Detect.ExitAfter = 3    // the verdict turns clean 3s after the flood
	lp := &alertLoop{t: t, ctx: ctx, l: l, c: lab.HTTPClient(l.Node), node: cfg.NodeName}
	tokenFile := cfg.Webhook.TokenFile
	lp.write(tokenFile, []byte("e2e-alert-loop-token\n"))
	rulesDir := filepath.Join(dir, "rules")
	lp.write(filepath.Join(rulesDir, "egressguard.rules.yml"), loopRules(t))
	promCfg := filepath.Join(dir, "prometheus.yml")
	lp.write(promCfg, loopPrometheusConfig(t, rulesDir, cfg.NodeName))
	amCfg := filepath.Join(dir, "alertmanager.yml")
	lp.write(amCfg, loopAlertmanagerConfig(t, tokenFile))

	agent, err := labagent.New(l, tools.Egressguard, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lp.agent = agent
	if err := agent.StartNoWait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Stop()
		if t.Failed() {
			t.Logf("agent output:\n%s", agent.Proc.Output())
		}
	})
	lp.start(amBin, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "alertmanager"),
		"--web.listen-address="+loopAlertmanagerAddr, "--cluster.listen-address=", "--log.level=warn")
	lp.start(promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "prometheus"),
		"--web.listen-address="+loopPrometheusAddr, "--log.level=warn")
	if err := agent.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://" + loopPrometheusAddr + "/-/ready", "http://" + loopAlertmanagerAddr + "/-/ready"} {
		lp.waitUntil("ready: "+u, 100*time.Millisecond, func() bool { return lp.get(u, nil) == nil })
	}
	lp.waitUntil("Prometheus scraping the agent", 100*time.Millisecond, func() bool {
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		err := lp.get("http://"+loopPrometheusAddr+`/api/v1/query?query=up{job="egressguard",node="`+lp.node+`"}`, &r)
		return err == nil && len(r.Data.Result) == 1 && r.Data.Result[0].Value[1] == "1"
	})

	flood := lp.start(tools.Synflood, "-rate", "5000", "-duration", "2m", "-dst", "198.18.0.0/24")

	// The detector throttles first; the operator releases it at once.
	lp.waitUntil("the detector's throttle", 50*time.Millisecond, func() bool {
		m, ok := lp.mitigation()
		return ok && m.Reason == "detector"
	})
	if m, _ := lp.mitigation(); !slices.Equal(m.Owners, []string{"detector"}) {
		t.Fatalf("before the operator's release the owners are %q, want the detector alone: the alert came too early for the test's premise", m.Owners)
	}
	if out, code, err := agent.CLI(ctx, "unthrottle", "--interface", lab.Uplink); err != nil || code != 0 {
		t.Fatalf("egressguard unthrottle: exit %d, %v\n%s", code, err, out)
	}
	if m, ok := lp.mitigation(); ok {
		t.Fatalf("after `egressguard unthrottle` the agent still holds %+v", m)
	}
	if f := lp.classifier(); f != "" {
		t.Fatalf("after `egressguard unthrottle` %s still has egressguard's classifier:\n%s", lab.Uplink, f)
	}
	if lp.alertState() == "firing" {
		t.Fatalf("%s already firing when the detector's throttle was released: the test's premise fails", loopAlert)
	}

	// Firing → webhook → throttle in the kernel.
	lp.waitUntil(loopAlert+" firing in Prometheus", 25*time.Millisecond, func() bool { return lp.alertState() == "firing" })
	firing := time.Now()
	lp.waitUntil("egressguard's classifier on "+lab.Uplink, 10*time.Millisecond, func() bool { return lp.classifier() != "" })
	throttled := time.Now()

	fp := lp.fingerprint()
	m, ok := lp.mitigation()
	switch {
	case !ok:
		t.Fatalf("classifier on %s but the agent's status has no mitigation", lab.Uplink)
	case m.Reason != "webhook" || !slices.Equal(m.Owners, []string{fp}):
		t.Fatalf("mitigation reason %q owners %q, want reason webhook owned by the alert's fingerprint %s alone", m.Reason, m.Owners, fp)
	case !m.Installed:
		t.Fatalf("mitigation %+v is recorded but not installed", m)
	}
	lp.waitUntil("the throttled class dropping the flood", 100*time.Millisecond, func() bool {
		m, ok := lp.mitigation()
		return ok && m.Throttled.Drops > 0
	})

	// Flood ends → verdict clean → alert resolves → resolution → release.
	_ = flood.Stop(2 * time.Second) // synflood dies of SIGTERM: an exit error
	stopped := time.Now()
	lp.waitUntil(loopAlert+" resolved in Prometheus", 25*time.Millisecond, func() bool { return lp.alertState() == "" })
	resolved := time.Now()
	lp.waitUntil(lab.Uplink+"'s classifier gone", 10*time.Millisecond, func() bool { return lp.classifier() == "" })
	released := time.Now()

	if m, ok := lp.mitigation(); ok {
		t.Errorf("after the release the agent still holds %+v", m)
	}
	if q, err := lp.l.Qdiscs(lp.ctx, lp.l.Node, lab.Uplink); err != nil || !strings.Contains(q, "qdisc noqueue 0: root") || strings.Contains(q, "clsact") {
		t.Errorf("%s's qdiscs after the release, want only veth's default noqueue (no clsact): %v\n%s", lab.Uplink, err, q)
	}
	if !slices.ContainsFunc(agent.LogEntries("mitigation released"), func(e map[string]any) bool {
		return e["cause"] == "released" && e["owner"] == fp
	}) {
		t.Errorf("no \"mitigation released\" log line with cause released and owner %s (the webhook's resolution)", fp)
	}
	t.Logf("alert firing in Prometheus → throttle in the kernel: %v", throttled.Sub(firing).Round(time.Millisecond))
	t.Logf("flood stopped → alert resolved in Prometheus: %v", resolved.Sub(stopped).Round(time.Millisecond))
	t.Logf("alert resolved in Prometheus → throttle removed: %v", released.Sub(resolved).Round(time.Millisecond))
	t.Logf("lab up → release: %v", time.Since(started).Round(time.Millisecond))
}

// loopRules is the shipped egressguard.rules.yml with loopAlert's `for` at
// 10s and its range at 5s (see TestAlertLoop). It fails when the shipped rule
// no longer has the shape the test relies on.
func loopRules(t *testing.T) []byte {
	t.Helper()
	const name = "egressguard.rules.yml"
	src, ok := rules.Files()[name]
	if !ok {
		t.Fatalf("rules: no embedded %s", name)
	}
	var doc struct {
		Groups []struct {
			Name  string           `yaml:"name"`
			Rules []map[string]any `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatalf("rules: %s: %v", name, err)
	}
	rangeSel := regexp.MustCompile(`\[[0-9]+[smhdwy]\]`)
	found := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r["alert"] != loopAlert {
				continue
			}
			found++
			labels, _ := r["labels"].(map[string]any)
			expr, _ := r["expr"].(string)
			if labels["egressguard_action"] != "throttle" || len(rangeSel.FindAllString(expr, -1)) != 1 || r["for"] == nil {
				t.Fatalf("rules: %s %s: want label egressguard_action=throttle, one range selector and a for; got %v", name, loopAlert, r)
			}
			r["expr"] = rangeSel.ReplaceAllString(expr, "[5s]")
			r["for"] = "10s"
		}
	}
	if found != 1 {
		t.Fatalf("rules: %s has %d %s rules, want 1", name, found, loopAlert)
	}
	return loopMarshal(t, doc)
}

// loopPrometheusConfig is rules/examples/prometheus.yml with 1s intervals,
// the rules in rulesDir, Alertmanager on the node's loopback and the target's
// node label set to node; jobs other than egressguard go.
func loopPrometheusConfig(t *testing.T, rulesDir, node string) []byte {
	t.Helper()
	cfg := loopExample(t, "prometheus.yml")
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = []any{filepath.Join(rulesDir, "*.yml")}
	cfg["alerting"] = map[string]any{"alertmanagers": []any{
		map[string]any{"static_configs": []any{map[string]any{"targets": []any{loopAlertmanagerAddr}}}},
	}}
	var jobs []any
	for _, j := range loopList(t, cfg["scrape_configs"]) {
		job := loopMap(t, j)
		if job["job_name"] != "egressguard" {
			continue
		}
		statics := loopList(t, job["static_configs"])
		if len(statics) != 1 {
			t.Fatalf("examples/prometheus.yml: job egressguard has %d static_configs, want 1", len(statics))
		}
		sc := loopMap(t, statics[0])
		if targets := loopList(t, sc["targets"]); len(targets) != 1 || targets[0] != labagent.Listen {
			t.Fatalf("examples/prometheus.yml: egressguard targets %v, want [%s]", targets, labagent.Listen)
		}
		labels := loopMap(t, sc["labels"])
		if _, ok := labels["node"]; !ok {
			t.Fatal("examples/prometheus.yml: the egressguard target has no node label")
		}
		labels["node"] = node
		jobs = append(jobs, job)
	}
	if len(jobs) != 1 {
		t.Fatalf("examples/prometheus.yml: %d egressguard jobs, want 1", len(jobs))
	}
	cfg["scrape_configs"] = jobs
	return loopMarshal(t, cfg)
}

// loopAlertmanagerConfig is rules/examples/alertmanager.yml with 1s
// grouping on the egressguard route and the webhook's token file replaced.
func loopAlertmanagerConfig(t *testing.T, tokenFile string) []byte {
	t.Helper()
	cfg := loopExample(t, "alertmanager.yml")
	routed := 0
	for _, r := range loopList(t, loopMap(t, cfg["route"])["routes"]) {
		if route := loopMap(t, r); route["receiver"] == "egressguard" {
			route["group_wait"], route["group_interval"] = "1s", "1s"
			routed++
		}
	}
	hooks := 0
	for _, r := range loopList(t, cfg["receivers"]) {
		recv := loopMap(t, r)
		if recv["name"] != "egressguard" {
			continue
		}
		for _, w := range loopList(t, recv["webhook_configs"]) {
			wc := loopMap(t, w)
			if wc["url"] != "http://"+labagent.Listen+"/api/v1/alertmanager" || wc["send_resolved"] != true {
				t.Fatalf("examples/alertmanager.yml: egressguard webhook %v: want url http://%s/api/v1/alertmanager and send_resolved", wc, labagent.Listen)
			}
			loopMap(t, loopMap(t, wc["http_config"])["authorization"])["credentials_file"] = tokenFile
			hooks++
		}
	}
	if routed != 1 || hooks != 1 {
		t.Fatalf("examples/alertmanager.yml: %d routes and %d webhooks to egressguard, want 1 and 1", routed, hooks)
	}
	return loopMarshal(t, cfg)
}

func loopExample(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "rules", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("examples/%s: %v", name, err)
	}
	return cfg
}

func loopMap(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("example config: %v (%T): want a mapping", v, v)
	}
	return m
}

func loopList(t *testing.T, v any) []any {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("example config: %v (%T): want a list", v, v)
	}
	return l
}

func loopMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loopTool returns the path of an installed binary, or skips: the test
// needs root and both binaries, which CI has, and is skipped with -short.
func loopTool(t *testing.T, name, pkg string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root for network namespaces, tc and raw sockets")
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH (apt-get install %s); CI installs it and runs this test", name, pkg)
	}
	return p
}

// alertLoop is TestAlertLoop's lab, HTTP client (dialling inside the node
// namespace) and deadline.
type alertLoop struct {
	t     *testing.T
	ctx   context.Context
	l     *lab.Lab
	c     *http.Client
	agent *labagent.Agent
	node  string // the agent's node_name, the target's node label
}

func (lp *alertLoop) write(path string, content []byte) {
	lp.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		lp.t.Fatal(err)
	}
	if err := os.WriteFile(path, content, 0o600); err != nil {
		lp.t.Fatal(err)
	}
}

// start runs a process in the node namespace, stops it at cleanup and logs
// its output when the test failed.
func (lp *alertLoop) start(name string, args ...string) *lab.Proc {
	lp.t.Helper()
	p, err := lp.l.Start(lp.l.Node, name, args...)
	if err != nil {
		lp.t.Fatal(err)
	}
	lp.t.Cleanup(func() {
		_ = p.Stop(5 * time.Second)
		if lp.t.Failed() {
			lp.t.Logf("%s output:\n%s", filepath.Base(name), p.Output())
		}
	})
	return p
}

// waitUntil polls ok every interval for at most loopWait.
func (lp *alertLoop) waitUntil(what string, every time.Duration, ok func() bool) {
	lp.t.Helper()
	ctx, cancel := context.WithTimeout(lp.ctx, loopWait)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			lp.t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(every):
		}
	}
}

// get GETs url and decodes its JSON body into v (nil: any 200 will do).
func (lp *alertLoop) get(url string, v any) error {
	req, err := http.NewRequestWithContext(lp.ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := lp.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(body, v)
}

// alertState is loopAlert's state for the lab's node and uplink in
// Prometheus: "pending", "firing" or "" (inactive or resolved).
func (lp *alertLoop) alertState() string {
	lp.t.Helper()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := lp.get("http://"+loopPrometheusAddr+"/api/v1/alerts", &r); err != nil {
		lp.t.Fatal(err)
	}
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == loopAlert && a.Labels["node"] == lp.node && a.Labels["interface"] == lab.Uplink {
			return a.State
		}
	}
	return ""
}

// fingerprint is the fingerprint Alertmanager gave loopAlert: the owner ID
// of the webhook's claim.
func (lp *alertLoop) fingerprint() string {
	lp.t.Helper()
	var alerts []struct {
		Fingerprint string            `json:"fingerprint"`
		Labels      map[string]string `json:"labels"`
	}
	if err := lp.get("http://"+loopAlertmanagerAddr+"/api/v2/alerts?filter=alertname%3D%22"+loopAlert+"%22", &alerts); err != nil {
		lp.t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Fingerprint == "" {
		lp.t.Fatalf("Alertmanager holds %d %s alerts (%+v), want 1 with a fingerprint", len(alerts), loopAlert, alerts)
	}
	return alerts[0].Fingerprint
}

// mitigation is the agent's mitigation on the uplink, from /api/v1/status.
func (lp *alertLoop) mitigation() (control.MitigationStatus, bool) {
	lp.t.Helper()
	st, err := lp.agent.Status(lp.ctx)
	if err != nil {
		lp.t.Fatal(err)
	}
	for _, m := range st.Mitigations {
		if m.Interface == lab.Uplink {
			return m, true
		}
	}
	return control.MitigationStatus{}, false
}

// qdiscs is `tc qdisc show dev up0` in the node namespace.
// classifier is egressguard's filter on up0's egress hook as tc shows it,
// "" when there is none (no clsact qdisc is none too).
func (lp *alertLoop) classifier() string {
	lp.t.Helper()
	out, _ := lp.l.Exec(lp.ctx, lp.l.Node, "tc", "filter", "show", "dev", lab.Uplink, "egress", "prio", "233")
	if !strings.Contains(out, "handle 0xe9") {
		return ""
	}
	return out
}
