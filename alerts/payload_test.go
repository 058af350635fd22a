package alerts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDecodeFixtures(t *testing.T) {
	for _, tc := range []struct {
		file       string
		status     string
		zeroEndsAt bool
	}{
		// Captured from Alertmanager 0.25 by TestRealAlertmanager -update.
		{"alertmanager-firing.json", StatusFiring, true},
		{"alertmanager-resolved.json", StatusResolved, false},
		// The firing capture with fields newer Alertmanagers add, top level and per alert.
		{"newer-alertmanager.json", StatusFiring, true},
	} {
		f, err := os.Open(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if p.Version != "4" || p.Status != tc.status || p.Receiver != "egressguard" || p.GroupKey == "" || len(p.Alerts) != 2 {
			t.Errorf("%s: decoded %+v", tc.file, p)
		}
		for i, a := range p.Alerts {
			if a.Status != tc.status || a.Fingerprint == "" || a.StartsAt.IsZero() || a.EndsAt.IsZero() != tc.zeroEndsAt {
				t.Errorf("%s: alerts[%d] = %+v", tc.file, i, a)
			}
		}
		if p.CommonLabels["egressguard_action"] != "throttle" || p.GroupLabels["alertname"] != "EgressguardThrottleRequested" {
			t.Errorf("%s: labels %v %v", tc.file, p.CommonLabels, p.GroupLabels)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{``, "alerts: decode payload: EOF"},
		{`null`, `alerts: payload version "": want "4"`},
		{`[]`, "alerts: decode payload: json: cannot unmarshal array into Go value of type alerts.Payload"},
		{`{"version":4}`, "alerts: decode payload: json: cannot unmarshal number into Go struct field Payload.version of type string"},
		{`{"version":"4","status":"pending"}`, `alerts: payload status "pending": want "firing" or "resolved"`},
		{`{"version":"4","status":"firing","alerts":[{"status":"firing","fingerprint":"a"},{"status":"","fingerprint":"b"}]}`,
			`alerts: alerts[1].status "": want "firing" or "resolved"`},
		{`{"version":"4","status":"firing","alerts":[{"status":"firing"}]}`,
			`alerts: alerts[0].fingerprint "": want the alert's fingerprint`},
		{`{"version":"4","status":"firing","alerts":[{"status":"firing","fingerprint":"a","endsAt":"yesterday"}]}`,
			`alerts: decode payload: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`},
		{`{"version":"4","status":"firing"} {}`, "alerts: decode payload: unexpected data after the JSON object"},
	} {
		_, err := Decode(strings.NewReader(tc.body))
		if err == nil || err.Error() != tc.want {
			t.Errorf("Decode(%s):\n got %v\nwant %s", tc.body, err, tc.want)
		}
	}
}

func TestDecodeFiringEndsAtIsZero(t *testing.T) {
	p, err := Decode(strings.NewReader(`{"version":"4","status":"firing","alerts":[{"status":"firing","fingerprint":"a","endsAt":"0001-01-01T00:00:00Z","startsAt":"2025-11-23T18:00:00.123456789+01:00"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Alerts[0]; !a.EndsAt.IsZero() || !a.StartsAt.Equal(time.Date(2025, 11, 23, 17, 0, 0, 123456789, time.UTC)) {
		t.Errorf("times: startsAt %v endsAt %v", a.StartsAt, a.EndsAt)
	}
}
