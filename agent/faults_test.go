package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/attrib"
	"github.com/egressguard/egressguard/shaper"
)

func manualThrottle(t *testing.T, a *Agent, iface string, rate uint64) (policy.Decision, error) {
	t.Helper()
	return a.Request(context.Background(), policy.Request{ID: "manual", Reason: policy.ReasonManual, Interface: iface, RateBps: rate})
}

func recorded(t *testing.T, a *Agent) []state.Mitigation {
	t.Helper()
	st, err := a.ctl.Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st.Mitigations
}

// TestUnreadableStateKeepsProtecting: with the layout in the kernel and a
// state file nobody can read, the agent becomes ready, keeps the layout
// under a rebuilt record, and can still release it and throttle anew.
func TestUnreadableStateKeepsProtecting(t *testing.T) {
	for name, body := range map[string]string{"empty": "", "half json": `{"version": 1, "mitigations": [{"inter`, "newer": `{"version": 2, "mitigations": []}`} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, state.FileName), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			a, _, kern := newTestAgentOn(t, "up0", &fakeKernel{installed: true}, func(c *config.Config) { c.StateDir = dir })
			ctx := context.Background()
			a.Reconcile(ctx)
			if !a.ready {
				t.Fatal("not ready after an unreadable state file")
			}
			ms := a.engine.Mitigations()
			if len(ms) != 1 || ms[0].Owners[0] != control.OwnerRecovered || !kern.installed {
				t.Fatalf("after recovery: policy %+v, kernel installed %v; want the layout kept under a rebuilt record", ms, kern.installed)
			}
			if kept, _ := filepath.Glob(filepath.Join(dir, state.FileName+".unreadable-*")); len(kept) != 1 {
				t.Fatalf("kept: %v, want the unreadable file kept", kept)
			}
			if _, err := a.Release(ctx, "", "up0"); err != nil || kern.installed || len(recorded(t, a)) != 0 {
				t.Fatalf("release after recovery: %v, installed %v, record %v", err, kern.installed, recorded(t, a))
			}
			if _, err := manualThrottle(t, a, "up0", 0); err != nil || !kern.installed {
				t.Fatalf("throttle after recovery: %v", err)
			}
		})
	}
}

// TestFailedActionRollsBackThePolicy: when the kernel refuses
// an update or a throttle, the answer is the kernel's error and the policy
// holds what the kernel holds, so status and the next decision are true.
func TestFailedActionRollsBackThePolicy(t *testing.T) {
	a, _, kern := newTestAgent(t, nil)
	if _, err := manualThrottle(t, a, "up0", 1_000_000); err != nil {
		t.Fatal(err)
	}
	kern.applyErr = errors.New("RTNETLINK answers: Invalid argument")
	_, err := manualThrottle(t, a, "up0", 2_000_000)
	if err == nil || !strings.Contains(err.Error(), "Invalid argument") {
		t.Fatalf("update the kernel refused: %v; want the kernel's error", err)
	}
	if ms := a.engine.Mitigations(); len(ms) != 1 || ms[0].RateBps != 1_000_000 {
		t.Fatalf("policy after a refused update: %+v; want the 1mbit it had", ms)
	}
	if r := recorded(t, a); len(r) != 1 || r[0].RateBps != 1_000_000 {
		t.Fatalf("record after a refused update: %+v", r)
	}

	// Someone else's filter at our prio where a new throttle would go:
	// refused, nothing held.
	b, _, kb := newTestAgent(t, nil)
	kb.applyErr = fmt.Errorf("shaper: interface up0: a u32 filter holds prio 233 on egress: %w", shaper.ErrForeign)
	if _, err := manualThrottle(t, b, "up0", 0); err == nil {
		t.Fatal("throttle over a foreign filter reported success")
	}
	if ms := b.engine.Mitigations(); len(ms) != 0 || testutil.CollectAndCount(b.metrics.active) != 0 {
		t.Fatalf("policy after a refused throttle: %+v", ms)
	}
}

// TestUnrecordedReleaseIsRepaired: the layout is removed but the
// state file cannot be written; the release is reported failed, the next
// interval rewrites the record, and a restart does not bring the throttle
// back.
func TestUnrecordedReleaseIsRepaired(t *testing.T) {
	a, _, kern := newTestAgent(t, nil)
	ctx := context.Background()
	if _, err := manualThrottle(t, a, "up0", 0); err != nil {
		t.Fatal(err)
	}
	path := a.ctl.Store.Path()
	stale, _ := os.ReadFile(path)
	kern.onRemove = func() {
		os.Remove(path)
		os.Mkdir(path, 0o700) // the rename of the new record fails, as on a full disk
	}
	if _, err := a.Release(ctx, "", "up0"); !errors.Is(err, control.ErrRecord) {
		t.Fatalf("release with an unwritable record: %v; want ErrRecord", err)
	}
	// The disk frees up with the old record still there.
	kern.onRemove = nil
	os.Remove(path)
	os.WriteFile(path, stale, 0o600)
	a.Tick(ctx)
	if r := recorded(t, a); len(r) != 0 {
		t.Fatalf("after the next interval the record still holds %+v", r)
	}
	restarted, _, k2 := newTestAgentOn(t, "up0", &fakeKernel{}, func(c *config.Config) { c.StateDir = a.cfg.StateDir })
	restarted.Reconcile(ctx)
	if k2.installed {
		t.Fatal("the released throttle came back at the next start")
	}
}

// TestDriftIsReinstalled: our layout deleted by hand comes back, counted,
// also when an operator has set a root qdisc of their own meanwhile: the
// layout never holds the root, so the operator's qdisc stays as it is.
func TestDriftIsReinstalled(t *testing.T) {
	a, _, kern := newTestAgent(t, nil)
	ctx := context.Background()
	if _, err := manualThrottle(t, a, "up0", 0); err != nil {
		t.Fatal(err)
	}
	kern.installed = false // tc qdisc del dev up0 root
	a.Tick(ctx)
	if !kern.installed || testutil.ToFloat64(a.metrics.drift.WithLabelValues("up0", "reinstall")) != 1 {
		t.Fatalf("deleted layout: installed %v; want it reinstalled and counted", kern.installed)
	}
	kern.installed, kern.foreign = false, "tbf" // the layout deleted, and tc qdisc replace dev up0 root tbf ...
	a.Tick(ctx)
	if !kern.installed || kern.foreign != "tbf" || testutil.ToFloat64(a.metrics.drift.WithLabelValues("up0", "reinstall")) != 2 {
		t.Fatalf("deleted layout under a tbf root: installed %v, root %s; want it reinstalled beside the tbf and counted", kern.installed, kern.foreign)
	}
	if len(a.engine.Mitigations()) != 1 || len(recorded(t, a)) != 1 {
		t.Fatalf("policy %+v, record %+v; want the mitigation kept", a.engine.Mitigations(), recorded(t, a))
	}
}

// TestWrongClockRecordIsClamped: a record from a node whose clock ran four
// years ahead is clamped to start now and expire within max_ttl.
func TestWrongClockRecordIsClamped(t *testing.T) {
	dir := t.TempDir()
	store, _ := state.Open(dir)
	ahead := time.Date(2030, 11, 23, 12, 0, 0, 0, time.UTC)
	store.Save(state.State{Mitigations: []state.Mitigation{{Interface: "up0", Scope: "node", Reason: policy.ReasonManual,
		Owners: []string{"manual"}, Since: ahead, Expires: ahead.Add(time.Hour), RateBps: 1_000_000}}})
	a, _, _ := newTestAgentOn(t, "up0", &fakeKernel{installed: true}, func(c *config.Config) { c.StateDir = dir })
	a.Reconcile(context.Background())
	now := a.now()
	ms := a.engine.Mitigations()
	if len(ms) != 1 || ms[0].Since.After(now) || ms[0].Expires.After(now.Add(time.Duration(a.cfg.Throttle.MaxTTL))) {
		t.Fatalf("adopted %+v at %s; want since <= now and expires <= now+max_ttl", ms, now)
	}
	if r := recorded(t, a); r[0].Since.After(now) {
		t.Fatalf("record not clamped: %+v", r[0])
	}
}

// TestStatusAttributionNeedsTheToken: /api/v1/status is open
// but its attribution needs the webhook's bearer token.
func TestStatusAttributionNeedsTheToken(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	a, _, _ := newTestAgent(t, func(c *config.Config) { c.Webhook.TokenFile = token })
	a.last["up0"] = InterfaceView{Verdict: detect.Verdict{State: detect.StateFlood},
		Attribution: &attrib.Attribution{Processes: []attrib.Process{{PID: 4242, Exe: "/usr/bin/flood", Cmdline: []string{"flood", "--secret"}}}}}
	h, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	get := func(auth string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/status", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	for _, auth := range []string{"", "Bearer wrong"} {
		code, body := get(auth)
		if code != http.StatusOK || strings.Contains(body, "4242") || strings.Contains(body, "/usr/bin/flood") || !strings.Contains(strings.ReplaceAll(body, " ", ""), `"attribution_withheld":true`) {
			t.Fatalf("status with auth %q: %d\n%s\nwant 200 without attribution", auth, code, body)
		}
	}
	if code, body := get("Bearer s3cret"); code != http.StatusOK || !strings.Contains(body, "/usr/bin/flood") {
		t.Fatalf("status with the token: %d\n%s", code, body)
	}
	for _, path := range []string{"/metrics", "/healthz"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d, want open", path, w.Code)
		}
	}
}

// TestSocketValidatesLikeTheCLI: the socket refuses with 400
// and the field what `throttle` refuses with exit 2.
func TestSocketValidatesLikeTheCLI(t *testing.T) {
	a, _, kern := newTestAgentOn(t, "lo", &fakeKernel{}, nil)
	post := func(body string) (int, string) {
		w := httptest.NewRecorder()
		a.serveThrottle(w, httptest.NewRequest(http.MethodPost, "/v1/throttle", strings.NewReader(body)))
		return w.Code, w.Body.String()
	}
	for _, tc := range []struct{ body, field string }{
		{`{"interface": "lo", "rate_bps": 18446744073709551615}`, "rate_bps"},
		{`{"interface": "lo", "rate_bps": 1}`, "rate_bps"},
		{`{"interface": "lo", "ttl_seconds": 1e-10}`, "ttl_seconds"},
		{`{"interface": "lo", "ttl_seconds": -5}`, "ttl_seconds"},
		{`{"interface": "lo", "ttl_seconds": 1e300}`, "ttl_seconds"},
		{`{"interface": "lo", "sources": ["0.0.0.0/0"]}`, "sources"},
		{`{"interface": "lo", "ports": [80, 80]}`, "ports"},
		{`{"interface": "lo", "ports": [22]}`, "ports"},
		{`{"interface": "lo", "ports": ["2000-1000"]}`, "2000-1000"},
		{`{"interface": "lo", "protocols": ["sctp"]}`, "protocols"},
		{`{"interface": "lo", "protocols": ["icmp"], "ports": [80]}`, "ports"},
		{`{"interface": "lo", "scope": "source"}`, "scope"},
		{`{"interface": "lo", "scope": "port", "sources": ["198.51.100.1/32"]}`, "sources"},
		{`{"interface": "nosuch0"}`, "interface"},
		{`{"interface": "a/b"}`, "interface"},
		{`{"interface": "lo", "bogus": 1}`, "bogus"},
		{strings.Repeat("[", 100000), "request body"},
		{`{"interface": "lo", "rate_bps": ` + strings.Repeat("[", 20000) + `}`, "decode"},
		{`{"interface": "lo"} {"interface": "lo"}`, "trailing"},
	} {
		code, body := post(tc.body)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.field) {
			short := tc.body
			if len(short) > 60 {
				short = short[:60] + "..."
			}
			t.Errorf("%s: %d %s; want 400 naming %s", short, code, body, tc.field)
		}
	}
	if kern.applies != 0 || len(a.engine.Mitigations()) != 0 {
		t.Fatalf("bad requests changed something: %d applies, %+v", kern.applies, a.engine.Mitigations())
	}
	if code, body := post(`{"interface": "lo", "rate_bps": 2000000, "ttl_seconds": 60}`); code != http.StatusOK || kern.lastRate != 2_000_000 {
		t.Fatalf("a good request: %d %s (rate %d)", code, body, kern.lastRate)
	}
	// Protocols and port ranges reach the shaper as asked; [] is any.
	code, body := post(`{"interface": "lo", "protocols": ["udp", "icmp"], "ports": ["1000-2000", 8080], "ttl_seconds": 60}`)
	if got := kern.lastSpec; code != http.StatusOK || fmt.Sprint(got.Protocols, got.Ports) != "[icmp udp] [1000-2000 8080]" {
		t.Fatalf("protocols and a range: %d %s; installed %v %v", code, body, got.Protocols, got.Ports)
	}
	if !strings.Contains(body, `"ports":["1000-2000",8080]`) || !strings.Contains(body, `"protocols":["icmp","udp"]`) {
		t.Errorf("the answer's mitigation: %s", body)
	}
	code, body = post(`{"interface": "lo", "protocols": [], "ports": [], "ttl_seconds": 60}`)
	if got := kern.lastSpec; code != http.StatusOK || len(got.Protocols) != 0 || len(got.Ports) != 0 {
		t.Fatalf("any protocol, any port: %d %s; installed %v %v", code, body, got.Protocols, got.Ports)
	}
}

// TestSocketScopePortTarget: scope port names a VM's bridge port, which the
// agent does not watch; a local-only device is still refused.
func TestSocketScopePortTarget(t *testing.T) {
	a, _, kern := newTestAgentOn(t, "lo", &fakeKernel{}, nil)
	w := httptest.NewRecorder()
	a.serveThrottle(w, httptest.NewRequest(http.MethodPost, "/v1/throttle", strings.NewReader(`{"interface": "lo", "scope": "port"}`)))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `"refused":"target"`) || kern.applies != 0 {
		t.Fatalf("scope port on the loopback: %d %s, %d applies; want 409 refused target", w.Code, w.Body.String(), kern.applies)
	}
}

// TestWebhookNeverAsksForRetryOfTheImpossible: an alert for an
// interface this node lacks is answered 2xx and counted refused, never 5xx.
func TestWebhookNeverAsksForRetryOfTheImpossible(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("s3cret"), 0o600)
	a, _, kern := newTestAgent(t, func(c *config.Config) { c.Webhook.TokenFile = token })
	h, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{
		"version": "4", "status": "firing", "receiver": "egressguard", "groupKey": "g",
		"alerts": []map[string]any{{
			"status": "firing", "fingerprint": "fp1", "startsAt": time.Now().Format(time.RFC3339),
			"labels": map[string]string{"alertname": "Flood", "egressguard_action": "throttle", "instance": "node1.dc1.example.com:9100", "interface": "nosuch0"},
		}},
	})
	req := httptest.NewRequest(http.MethodPost, "/api/v1/alertmanager", bytes.NewReader(payload))
	req.Header.Set("Authorization", "Bearer s3cret")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"refused":1`) || kern.applies != 0 {
		t.Fatalf("alert for a missing interface: %d %s; want 200 with the refusal counted", w.Code, w.Body.String())
	}
}

// TestClientHangUpDoesNotSplitKernelAndPolicy: a CLI that disconnects
// mid-request does not cancel the action halfway; the kernel, the record and
// the policy agree afterwards.
func TestClientHangUpDoesNotSplitKernelAndPolicy(t *testing.T) {
	a, _, kern := newTestAgentOn(t, "lo", &fakeKernel{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodPost, "/v1/throttle", strings.NewReader(`{"interface": "lo", "rate_bps": 2000000}`)).WithContext(ctx)
	a.serveThrottle(httptest.NewRecorder(), req)
	ms, recs := a.engine.Mitigations(), recorded(t, a)
	if kern.installed != (len(ms) == 1) || len(ms) != len(recs) {
		t.Fatalf("after a hang-up: kernel %v, policy %+v, record %+v; want all three to agree", kern.installed, ms, recs)
	}
}
