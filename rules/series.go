package rules

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Query is one PromQL expression of a dashboard panel.
type Query struct {
	Panel string // the panel's title
	Expr  string // as in the dashboard, with Grafana's variables
}

// Expand returns q's expression with the dashboard's variables replaced by
// values Prometheus accepts: every node ($instance) and a 1m rate window
// ($__rate_interval, what Grafana picks for a 15s scrape interval), so
// promtool and the Prometheus API can evaluate it.
func (q Query) Expand() string { return q.ExpandRate("1m") }

// ExpandRate is Expand with the rate window given, a PromQL duration such as
// 10s; Grafana's $__rate_interval is at least four scrape intervals.
func (q Query) ExpandRate(window string) string {
	return strings.NewReplacer("$instance", ".+", "$__rate_interval", window).Replace(q.Expr)
}

// DashboardQueries returns every PromQL expression of the Grafana dashboard,
// in panel order.
func DashboardQueries() ([]Query, error) {
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(Dashboard(), &d); err != nil {
		return nil, fmt.Errorf("rules: dashboard: %w", err)
	}
	var qs []Query
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			qs = append(qs, Query{Panel: p.Title, Expr: t.Expr})
		}
	}
	return qs, nil
}

// RuleExprs returns the expression of every shipped alerting and recording
// rule, keyed by the alert or record name.
func RuleExprs() (map[string]string, error) {
	out := map[string]string{}
	for name, content := range Files() {
		var f struct {
			Groups []struct {
				Rules []struct {
					Alert  string `yaml:"alert"`
					Record string `yaml:"record"`
					Expr   string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(content, &f); err != nil {
			return nil, fmt.Errorf("rules: %s: %w", name, err)
		}
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				out[r.Alert+r.Record] = r.Expr
			}
		}
	}
	return out, nil
}

// SeriesNames returns the metric names the shipped rules and dashboard read,
// sorted, without the series the rules record themselves.
func SeriesNames() ([]string, error) {
	exprs, err := RuleExprs()
	if err != nil {
		return nil, err
	}
	qs, err := DashboardQueries()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range exprs {
		names = append(names, MetricNames(e)...)
	}
	for _, q := range qs {
		names = append(names, MetricNames(q.Expand())...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return slices.DeleteFunc(names, func(n string) bool { _, recorded := exprs[n]; return recorded }), nil
}

// IsAgentSeries reports whether a metric name is one the agent exports
// (rather than Prometheus's own up or node_exporter's series).
func IsAgentSeries(name string) bool { return strings.HasPrefix(name, "egressguard_") }

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers  = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promqlGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlKeywords  = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "atan2"}
	promqlDurations = regexp.MustCompile(`^[0-9]`)
)

// MetricNames returns the metric names an expression selects: identifiers
// that are not functions, aggregations, keywords, label names or parts of
// numbers. It is a lexer's view, enough for the shipped expressions; promtool
// checks their syntax.
func MetricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, `""`)
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if loc[0] > 0 && (promqlDurations.MatchString(s[loc[0]-1:loc[0]]) || s[loc[0]-1] == '.') {
			continue // the exponent or unit of a number: 125e6, 1.5e3
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if slices.Contains(promqlKeywords, strings.ToLower(id)) {
			continue
		}
		out = append(out, id)
	}
	return out
}
