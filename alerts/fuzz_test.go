package alerts

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// FuzzHandler feeds arbitrary bodies and Authorization headers through the
// handler: it never panics, always answers JSON, and the Sink sees nothing
// unless the request was authenticated and the payload decodes.
func FuzzHandler(f *testing.F) {
	for _, name := range []string{"alertmanager-firing.json", "alertmanager-resolved.json", "newer-alertmanager.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		// Fixtures name node1:9466 and node2:9466; the handler is node1.
		f.Add(b, "Bearer "+testToken)
		f.Add(b, "Bearer wrong")
	}
	f.Add([]byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","fingerprint":"x","labels":{"egressguard_action":"throttle","node":"node1"}}]}`), "bearer "+testToken)
	f.Add([]byte(`{"version":"4","status":"resolved","alerts":[{"status":"resolved","fingerprint":"x","labels":{"egressguard_action":"throttle","instance":"[node1]:1","device":"eth9"}}]}`), "Bearer "+testToken)
	f.Add([]byte(`{not json`), "")
	f.Add([]byte(`null`), "Bearer "+testToken)

	f.Fuzz(func(t *testing.T, body []byte, auth string) {
		sink := newFakeSink(t)
		h := newTestHandler(t, sink)
		req := httptest.NewRequest("POST", "/api/v1/alertmanager", bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body)
		}
		events := sink.Events()
		p, decodeErr := Decode(bytes.NewReader(body))
		authenticated := h.authenticate(req) == ""
		switch {
		case !authenticated && rec.Code != 401:
			t.Fatalf("unauthenticated request answered %d", rec.Code)
		case authenticated && int64(len(body)) > h.cfg.MaxBody && rec.Code != 413:
			t.Fatalf("body of %d bytes answered %d", len(body), rec.Code)
		case authenticated && int64(len(body)) <= h.cfg.MaxBody && decodeErr != nil && rec.Code != 400:
			t.Fatalf("undecodable body (%v) answered %d", decodeErr, rec.Code)
		case rec.Code != 200 && rec.Code != 500 && len(events) != 0:
			t.Fatalf("answer %d, yet the sink saw %q", rec.Code, events)
		case (rec.Code == 200 || rec.Code == 500) && (!authenticated || decodeErr != nil):
			t.Fatalf("answer %d to a bad request (authenticated %v, decode %v)", rec.Code, authenticated, decodeErr)
		case len(events) > len(requests(p, "node1", h.cfg.Watched())):
			t.Fatalf("the sink saw %q for %d requests", events, len(requests(p, "node1", h.cfg.Watched())))
		}
	})
}
