package alerts

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/alertmanager-*.json from a real Alertmanager")

// capture keeps the raw bodies a real Alertmanager posted.
type capture struct {
	next   http.Handler
	mu     sync.Mutex
	bodies [][]byte
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.bodies = append(c.bodies, body)
	c.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	c.next.ServeHTTP(w, r)
}

func (c *capture) last() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bodies) == 0 {
		return nil
	}
	return c.bodies[len(c.bodies)-1]
}

// TestRealAlertmanager runs the installed Alertmanager against the handler: it
// authenticates with credentials_file, a firing alert creates a mitigation and
// its resolution releases it; alerts for another node are ignored.
func TestRealAlertmanager(t *testing.T) {
	bin, err := exec.LookPath("prometheus-alertmanager") // Debian's name
	if err != nil {
		if bin, err = exec.LookPath("alertmanager"); err != nil {
			t.Skip("no Alertmanager on PATH (apt-get install prometheus-alertmanager); CI runs this test")
		}
	}
	dir := t.TempDir()
	sink := newFakeSink(t)
	rec := &capture{next: newTestHandler(t, sink)}
	webhook := httptest.NewServer(rec)
	t.Cleanup(webhook.Close)

	tokenFile := filepath.Join(dir, "webhook.token")
	writeFile(t, tokenFile, testToken+"\n")
	cfg := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, cfg, fmt.Sprintf(`route:
  receiver: egressguard
  group_by: [alertname]
  group_wait: 500ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: egressguard
    webhook_configs:
      - url: %s/api/v1/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: %s
`, webhook.URL, tokenFile))
	addr := freeLoopbackAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	waitFor(t, "alertmanager ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	start := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	post := func(endsAt string) {
		t.Helper()
		ends := ""
		if endsAt != "" {
			ends = fmt.Sprintf(`,"endsAt":%q`, endsAt)
		}
		body := fmt.Sprintf(`[
 {"labels":{"alertname":"EgressguardThrottleRequested","egressguard_action":"throttle","instance":"node1:9466","interface":"eth0","job":"egressguard"},"startsAt":%[1]q%[2]s},
 {"labels":{"alertname":"EgressguardThrottleRequested","egressguard_action":"throttle","instance":"node2:9466","interface":"eth0","job":"egressguard"},"startsAt":%[1]q%[2]s}]`, start, ends)
		resp, err := http.Post(base+"/api/v2/alerts", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("post alerts: %s", resp.Status)
		}
	}

	post("")
	waitFor(t, "the firing notification", func() bool { return len(sink.Events()) >= 1 })
	firing := rec.last()
	post(time.Now().UTC().Add(-time.Second).Format(time.RFC3339))
	waitFor(t, "the resolved notification", func() bool { return len(sink.Events()) >= 2 })
	resolved := rec.last()

	if got, want := sink.Events(), []string{"create m1 eth0", "release m1"}; !slices.Equal(got, want) {
		t.Errorf("sink events %q, want %q", got, want)
	}
	for name, body := range map[string][]byte{"firing": firing, "resolved": resolved} {
		p, err := Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s payload: %v\n%s", name, err, body)
		}
		if p.Status != name || len(p.Alerts) != 2 || p.Receiver != "egressguard" {
			t.Errorf("%s payload: status %q, %d alerts, receiver %q", name, p.Status, len(p.Alerts), p.Receiver)
		}
		if name == "firing" && !p.Alerts[0].EndsAt.IsZero() {
			t.Errorf("firing alert endsAt %v, want the zero time", p.Alerts[0].EndsAt)
		}
		if *update {
			writeFile(t, filepath.Join("testdata", "alertmanager-"+name+".json"), string(body))
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond; the deadline only bounds a broken run, nothing is timed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("no %s within 20s", what)
}
