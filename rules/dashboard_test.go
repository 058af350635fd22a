package rules

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDashboardShape checks what Grafana needs to import the dashboard and
// what the issue asked of it: unique panel ids, every query on the
// dashboard's data source variable, and the panels operators look for.
func TestDashboardShape(t *testing.T) {
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(Dashboard(), &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" {
		t.Error("dashboard has no uid")
	}
	ids := map[int]bool{}
	titles := map[string]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		titles[p.Title] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source is not the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.RefID == "" || strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q: query %+v without refId or expr", p.Title, q)
			}
		}
	}
	for _, want := range []string{"Nodes in flood", "Top nodes by SYN out", "Transmit", "SYN out vs SYN-ACK in", "Verdict",
		"Active mitigations", "Throttled traffic sent", "Throttled drops", "Actions and refusals", "Action budget left"} {
		if !titles[want] {
			t.Errorf("no panel %q", want)
		}
	}
}
