package alerts

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Alert and group statuses as Alertmanager sends them.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// PayloadVersion is the only webhook payload version this package reads.
const PayloadVersion = "4"

// Payload is an Alertmanager webhook notification, version 4. Fields that newer
// Alertmanagers add (for example notification_reason) are ignored, never rejected.
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Payload. A firing alert's EndsAt is the zero time
// (Alertmanager sends 0001-01-01T00:00:00Z).
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Decode reads one JSON payload from r and validates it. Unknown fields are
// accepted; anything after the JSON object is an error.
func Decode(r io.Reader) (Payload, error) {
	dec := json.NewDecoder(r)
	var p Payload
	if err := dec.Decode(&p); err != nil {
		return Payload{}, fmt.Errorf("alerts: decode payload: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Payload{}, fmt.Errorf("alerts: decode payload: unexpected data after the JSON object")
	}
	if err := p.Validate(); err != nil {
		return Payload{}, err
	}
	return p, nil
}

// Validate checks what the mapping relies on: the version, the statuses and
// that every alert has a fingerprint. The error names the field and its value.
func (p Payload) Validate() error {
	if p.Version != PayloadVersion {
		return fmt.Errorf("alerts: payload version %q: want %q", p.Version, PayloadVersion)
	}
	if !validStatus(p.Status) {
		return fmt.Errorf("alerts: payload status %q: want %q or %q", p.Status, StatusFiring, StatusResolved)
	}
	for i, a := range p.Alerts {
		if !validStatus(a.Status) {
			return fmt.Errorf("alerts: alerts[%d].status %q: want %q or %q", i, a.Status, StatusFiring, StatusResolved)
		}
		if a.Fingerprint == "" {
			return fmt.Errorf("alerts: alerts[%d].fingerprint %q: want the alert's fingerprint", i, a.Fingerprint)
		}
	}
	return nil
}

func validStatus(s string) bool { return s == StatusFiring || s == StatusResolved }
