// Package rules holds egressguard's Prometheus rule files, embedded in the
// binary: alerts on the agent's own metrics (egressguard.rules.yml), on
// node_exporter's alone (node-egress.rules.yml) and across the fleet
// (fleet.rules.yml). Their promtool unit tests live in rules/tests, and
// example Prometheus and Alertmanager configurations in rules/examples.
// `egressguard rules [--out DIR]` prints or writes them. It also holds the
// Grafana dashboard (dashboards/egressguard.json, `egressguard rules
// --dashboard`) and the list of series the rules and dashboard read
// (SeriesNames), which the agent's tests hold to what it exports.
package rules
