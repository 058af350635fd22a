package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egressguard/egressguard/agent/policy"
)

const testToken = "s3cret-token"

// fakeSink is idempotent by fingerprint, as the agent's policy is (each
// fingerprint owns its claim), and records what it did. Interface eth9 is
// refused by policy, eth8 fails.
type fakeSink struct {
	mu     sync.Mutex
	next   int
	byFP   map[string]string // fingerprint → mitigation id
	events []string          // "create m1 eth0", "renew m1", "release m1", "refuse", "fail"
}

func newFakeSink(testing.TB) *fakeSink {
	return &fakeSink{byFP: map[string]string{}}
}

func (s *fakeSink) record(e string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *fakeSink) Events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func (s *fakeSink) Mitigate(_ context.Context, r Request) error {
	switch {
	case slices.Contains(r.Interfaces, "eth9"):
		s.record("refuse")
		return fmt.Errorf("throttle %s: %w: mode observe", r.Interfaces[0], policy.ErrRefused)
	case slices.Contains(r.Interfaces, "eth8"):
		s.record("fail")
		return errors.New("shaper: add class 1:10 on eth8: device or resource busy")
	}
	s.mu.Lock()
	id, renewed := s.byFP[r.Fingerprint]
	if !renewed {
		s.next++
		id = fmt.Sprintf("m%d", s.next)
		s.byFP[r.Fingerprint] = id
	}
	s.mu.Unlock()
	if renewed {
		s.record("renew " + id)
	} else {
		s.record("create " + id + " " + strings.Join(r.Interfaces, ","))
	}
	return nil
}

func (s *fakeSink) Release(_ context.Context, r Request) error {
	s.mu.Lock()
	id, ok := s.byFP[r.Fingerprint]
	delete(s.byFP, r.Fingerprint)
	s.mu.Unlock()
	if ok {
		s.record("release " + id)
	}
	return nil
}

func newTestHandler(t testing.TB, sink Sink) *Handler {
	t.Helper()
	h, err := NewHandler(HandlerConfig{
		Token:   func() []byte { return []byte(testToken + "\n") }, // as read from a file
		Node:    "node1",
		Watched: func() []string { return []string{"eth1", "eth0"} },
		MaxBody: 4096,
		Sink:    sink,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func throttleAlert(status, fp, instance, iface string) Alert {
	a := Alert{
		Status:      status,
		Labels:      map[string]string{"alertname": "EgressguardThrottleRequested", LabelAction: "throttle", "instance": instance},
		StartsAt:    time.Date(2025, 11, 23, 18, 0, 0, 0, time.UTC),
		Fingerprint: fp,
	}
	if iface != "" {
		a.Labels["interface"] = iface
	}
	if status == StatusResolved {
		a.EndsAt = time.Date(2025, 11, 23, 18, 30, 0, 0, time.UTC)
	}
	return a
}

func payloadJSON(t testing.TB, status string, alerts ...Alert) string {
	t.Helper()
	b, err := json.Marshal(Payload{Version: "4", GroupKey: `{}:{alertname="EgressguardThrottleRequested"}`, Status: status, Receiver: "egressguard", Alerts: alerts})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The steps run in order against one handler and one sink: the webhook's
// answers to everything Alertmanager (or anyone else) may send.
func TestHandlerConversation(t *testing.T) {
	sink := newFakeSink(t)
	srv := httptest.NewServer(newTestHandler(t, sink))
	t.Cleanup(srv.Close)

	firing := payloadJSON(t, StatusFiring, throttleAlert(StatusFiring, "aaaa", "node1:9466", "eth0"))
	resolved := payloadJSON(t, StatusResolved, throttleAlert(StatusResolved, "aaaa", "node1:9466", "eth0"))
	bearer := "Bearer " + testToken
	steps := []struct {
		name       string
		method     string
		auth       string
		body       string
		wantCode   int
		wantBody   string
		wantEvents []string // the sink's events after the step (cumulative)
	}{
		{"no token", "POST", "", firing, 401,
			`{"error":"missing bearer token"}`, nil},
		{"wrong token", "POST", "Bearer nope", firing, 401,
			`{"error":"wrong bearer token"}`, nil},
		{"basic auth", "POST", "Basic " + testToken, firing, 401,
			`{"error":"missing bearer token"}`, nil},
		{"GET", "GET", bearer, "", 405,
			`{"error":"method GET: want POST"}`, nil},
		{"garbage", "POST", bearer, "{not json", 400,
			`{"error":"alerts: decode payload: invalid character 'n' looking for beginning of object key string"}`, nil},
		{"wrong version", "POST", bearer, `{"version":"3","status":"firing","alerts":[]}`, 400,
			`{"error":"alerts: payload version \"3\": want \"4\""}`, nil},
		{"trailing data", "POST", bearer, firing + firing, 400,
			`{"error":"alerts: decode payload: unexpected data after the JSON object"}`, nil},
		{"too large", "POST", bearer, `{"version":"4",` + strings.Repeat(" ", 5000) + `}`, 413,
			`{"error":"body of 5016 bytes: limit 4096"}`, nil},
		{"firing", "POST", bearer, firing, 200,
			`{"alerts":1,"accepted":1,"ignored":0,"refused":0,"failed":0}`,
			[]string{"create m1 eth0"}},
		{"repeat (lowercase scheme)", "POST", "bearer " + testToken, firing, 200,
			`{"alerts":1,"accepted":1,"ignored":0,"refused":0,"failed":0}`,
			[]string{"create m1 eth0", "renew m1"}},
		{"for another node", "POST", bearer, payloadJSON(t, StatusFiring, throttleAlert(StatusFiring, "bbbb", "node2:9466", "eth0")), 200,
			`{"alerts":1,"accepted":0,"ignored":1,"refused":0,"failed":0}`,
			[]string{"create m1 eth0", "renew m1"}},
		{"resolved", "POST", bearer, resolved, 200,
			`{"alerts":1,"accepted":1,"ignored":0,"refused":0,"failed":0}`,
			[]string{"create m1 eth0", "renew m1", "release m1"}},
		{"resolved again", "POST", bearer, resolved, 200,
			`{"alerts":1,"accepted":1,"ignored":0,"refused":0,"failed":0}`,
			[]string{"create m1 eth0", "renew m1", "release m1"}},
		{"refused by policy", "POST", bearer, payloadJSON(t, StatusFiring, throttleAlert(StatusFiring, "cccc", "node1", "eth9")), 200,
			`{"alerts":1,"accepted":0,"ignored":0,"refused":1,"failed":0}`,
			[]string{"create m1 eth0", "renew m1", "release m1", "refuse"}},
		{"transient failure", "POST", bearer, payloadJSON(t, StatusFiring,
			throttleAlert(StatusFiring, "dddd", "node1", "eth8"),
			throttleAlert(StatusFiring, "eeee", "NODE1.:9100", "")), 500,
			`{"alerts":2,"accepted":1,"ignored":0,"refused":0,"failed":1,"error":"shaper: add class 1:10 on eth8: device or resource busy"}`,
			[]string{"create m1 eth0", "renew m1", "release m1", "refuse", "fail", "create m2 eth0,eth1"}},
	}
	for _, s := range steps {
		req, err := http.NewRequest(s.method, srv.URL+"/api/v1/alertmanager", strings.NewReader(s.body))
		if err != nil {
			t.Fatal(err)
		}
		if s.auth != "" {
			req.Header.Set("Authorization", s.auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := strings.TrimSpace(string(body)); resp.StatusCode != s.wantCode || got != s.wantBody {
			t.Errorf("%s: got %d %s, want %d %s", s.name, resp.StatusCode, got, s.wantCode, s.wantBody)
		}
		t.Logf("%-26s → %d %s", s.name, resp.StatusCode, strings.TrimSpace(string(body)))
		if got := resp.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("%s: Content-Type %q", s.name, got)
		}
		if got := sink.Events(); !slices.Equal(got, s.wantEvents) {
			t.Errorf("%s: sink events %q, want %q", s.name, got, s.wantEvents)
		}
		switch s.wantCode {
		case 401:
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", s.name)
			}
		case 405:
			if resp.Header.Get("Allow") != "POST" {
				t.Errorf("%s: 405 with Allow %q", s.name, resp.Header.Get("Allow"))
			}
		}
	}
}

// A chunked body has no Content-Length: the limit still holds while reading.
func TestHandlerBodyLimitWithoutContentLength(t *testing.T) {
	sink := newFakeSink(t)
	h := newTestHandler(t, sink)
	req := httptest.NewRequest("POST", "/api/v1/alertmanager", strings.NewReader(strings.Repeat("x", 5000)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 413 || strings.TrimSpace(rec.Body.String()) != `{"error":"body over the limit of 4096 bytes"}` {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
	if len(sink.Events()) != 0 {
		t.Errorf("sink events %q", sink.Events())
	}
}

func TestHandlerRefusesAllWithoutToken(t *testing.T) {
	for _, token := range []string{"", " \n"} {
		sink := newFakeSink(t)
		h, err := NewHandler(HandlerConfig{Token: func() []byte { return []byte(token) }, Node: "node1", Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		for _, auth := range []string{"", "Bearer ", "Bearer  \n"} {
			req := httptest.NewRequest("POST", "/", strings.NewReader(payloadJSON(t, StatusFiring, throttleAlert(StatusFiring, "a", "node1", "eth0"))))
			req.Header.Set("Authorization", auth)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 401 {
				t.Errorf("token %q, auth %q: got %d %s, want 401", token, auth, rec.Code, rec.Body)
			}
		}
		if len(sink.Events()) != 0 {
			t.Errorf("token %q: sink events %q", token, sink.Events())
		}
	}
}

func TestNewHandlerValidates(t *testing.T) {
	sink := newFakeSink(t)
	token := func() []byte { return []byte("t") }
	for _, tc := range []struct {
		cfg  HandlerConfig
		want string
	}{
		{HandlerConfig{Node: "n", Sink: sink}, "alerts: handler config Token: nil, want a token source"},
		{HandlerConfig{Token: token, Sink: sink}, `alerts: handler config Node "": want this node's name`},
		{HandlerConfig{Token: token, Node: "n"}, "alerts: handler config Sink: nil, want a sink"},
		{HandlerConfig{Token: token, Node: "n", Sink: sink, MaxBody: -1}, "alerts: handler config MaxBody -1: want 0 (default) or more"},
	} {
		if _, err := NewHandler(tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("NewHandler: got %v, want %s", err, tc.want)
		}
	}
	h, err := NewHandler(HandlerConfig{Token: token, Node: "n", Sink: sink})
	if err != nil || h.cfg.MaxBody != DefaultMaxBody {
		t.Errorf("defaults: %v, MaxBody %d", err, h.cfg.MaxBody)
	}
}
