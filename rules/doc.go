// Package rules holds egressguard's Prometheus rule files, embedded in the
// binary: alerts on the agent's own metrics (egressguard.rules.yml) and on
// node_exporter's alone (node-egress.rules.yml). Their promtool unit tests live
// in rules/tests, and example Prometheus and Alertmanager configurations in
// rules/examples. `egressguard rules [--out DIR]` prints or writes them.
package rules
