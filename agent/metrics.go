package agent

import (
	"context"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/egressguard/egressguard/agent/policy"
)

// metrics are the agent's Prometheus series (STYLE: egressguard_ prefix,
// base units, bounded labels: never an address or a port).
type metrics struct {
	reg       *prometheus.Registry
	txBytes   *prometheus.GaugeVec
	txPackets *prometheus.GaugeVec
	synOut    *prometheus.GaugeVec
	synAckIn  *prometheus.GaugeVec
	fanOut    *prometheus.GaugeVec
	verdict   *prometheus.GaugeVec
	active    *prometheus.GaugeVec
	expiry    *prometheus.GaugeVec
	actions   *prometheus.CounterVec
	refused   *prometheus.CounterVec
	drift     *prometheus.CounterVec
	evicted   prometheus.Counter
	evidence  prometheus.Counter
	blind     *prometheus.GaugeVec
	floodKeys *prometheus.GaugeVec
	spoofing  *prometheus.GaugeVec
	floodVM   *prometheus.GaugeVec
}

var verdictStates = []string{"clean", "attention", "flood"}

func newMetrics(version string, kernel prometheus.Collector) *metrics {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "egressguard_" + name, Help: help}, labels)
	}
	m := &metrics{
		reg:       prometheus.NewRegistry(),
		txBytes:   g("interface_transmit_bytes_per_second", "Transmit rate of a watched interface.", "interface"),
		txPackets: g("interface_transmit_packets_per_second", "Transmit packet rate of a watched interface.", "interface"),
		synOut:    g("interface_syn_out_per_second", "Outbound TCP SYN rate (offered, including what the throttle dropped).", "interface"),
		synAckIn:  g("interface_synack_in_per_second", "Inbound TCP SYN-ACK rate.", "interface"),
		fanOut:    g("interface_destinations", "Distinct destination addresses in the last interval (estimate).", "interface"),
		verdict:   g("interface_verdict", "1 for the detector's current state of the interface.", "interface", "state"),
		active:    g("mitigations_active", "Mitigations in force, by interface, reason and scope (node, source).", "interface", "reason", "scope"),
		expiry:    g("mitigation_expiry_timestamp_seconds", "When the mitigation on the interface expires unless renewed.", "interface"),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressguard_actions_total", Help: "Kernel actions taken, by action (throttle, update, release) and reason.",
		}, []string{"action", "reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressguard_actions_refused_total", Help: "Actions refused, by why (observe, budget, paused, whitelist, max_ttl, no_sources, target, error).",
		}, []string{"reason"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressguard_mitigation_drift_total",
			Help: "Times the kernel or the state file no longer held a mitigation in force, by what the agent did (reinstall, record).",
		}, []string{"interface", "action"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "egressguard_http_connections_evicted_total",
			Help: "HTTP connections closed to stay within the connection cap (the longest idle first).",
		}),
		evidence: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "egressguard_evidence_bundles_written_total", Help: "Evidence bundles written under the state directory.",
		}),
		blind:     g("interface_blind", "1 while a watched interface is missing or its capture is not bound to it; /readyz says why.", "interface"),
		floodKeys: g("flood_keys", "Keys judged flood on their own, by kind (source, port, other, interface); which ones is in status.", "interface", "kind"),
		spoofing:  g("spoofing_ports", "VM bridge ports emitting source addresses they do not own; which ones is in status.", "interface"),
		floodVM: g("flood_vm_info", "1 for each VM bridge port that floods, with the VM's name where known; present only while it floods, at most 16 per interface.",
			"interface", "port", "vm"),
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "egressguard_build_info", Help: "Build information; always 1."}, []string{"version", "goversion"})
	info.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(kernel, m.txBytes, m.txPackets, m.synOut, m.synAckIn, m.fanOut, m.verdict, m.active, m.expiry,
		m.actions, m.refused, m.drift, m.evicted, m.evidence, m.blind, m.floodKeys, m.spoofing, m.floodVM, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"observe", "budget", "paused", "whitelist", "max_ttl", "no_sources", "target", "error"} {
		m.refused.WithLabelValues(r)
	}
	// Every action counter exists from the start at 0, so that increase() sees
	// the first throttle (a series born at 1 shows no increase).
	for _, act := range []policy.Action{policy.ActionThrottle, policy.ActionUpdate, policy.ActionRelease} {
		for _, r := range []policy.Reason{policy.ReasonDetector, policy.ReasonWebhook, policy.ReasonManual} {
			m.actions.WithLabelValues(string(act), string(r))
		}
	}
	return m
}

// setVerdict sets the one-hot verdict series of an interface.
func (m *metrics) setVerdict(iface, state string) {
	for _, s := range verdictStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.verdict.WithLabelValues(iface, s).Set(v)
	}
}

// Series read at scrape time from what the kernel and the capture count.
var (
	throttledBytesDesc = prometheus.NewDesc("egressguard_throttled_sent_bytes_total",
		"Bytes the throttled class sent since the mitigation was installed (the shaper's class statistics).", []string{"interface"}, nil)
	throttledPacketsDesc = prometheus.NewDesc("egressguard_throttled_sent_packets_total",
		"Packets the throttled class sent since the mitigation was installed.", []string{"interface"}, nil)
	throttledDropsDesc = prometheus.NewDesc("egressguard_throttled_dropped_packets_total",
		"Packets the throttled class dropped since the mitigation was installed.", []string{"interface"}, nil)
	captureDropsDesc = prometheus.NewDesc("egressguard_capture_dropped_packets_total",
		"Frames that passed the capture's kernel filter but found its ring full, since the agent started (sampling adapts to keep this low).", []string{"interface"}, nil)
	budgetLeftDesc = prometheus.NewDesc("egressguard_action_budget_remaining",
		"Throttles or updates throttle.max_actions_per_hour still allows in the current sliding hour.", nil, nil)
)

// kernelScrapeTimeout bounds the netlink reads of one scrape.
const kernelScrapeTimeout = 2 * time.Second

// DropCounter is a capture that counts the frames its ring dropped.
type DropCounter interface {
	Dropped() uint64
}

// kernelCollector builds, at scrape time, the counters the kernel keeps, the
// way node_exporter's qdisc collector does: the throttled class's statistics
// through the shaper's Inspect (whatever layout it installed), each capture's
// ring drops, and the action budget left. Nothing is stored between
// scrapes, so an interface without a mitigation has no throttled series
// rather than a stale or never-set one. A class that is reinstalled starts
// from zero, which Prometheus's rate() treats as a counter reset.
type kernelCollector struct{ a *Agent }

// Describe implements prometheus.Collector.
func (kernelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{throttledBytesDesc, throttledPacketsDesc, throttledDropsDesc, captureDropsDesc, budgetLeftDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c kernelCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), kernelScrapeTimeout)
	defer cancel()
	d := c.a.deps
	for _, iface := range d.Interfaces {
		// Captures change under the agent's lock when a link comes or goes.
		c.a.mu.Lock()
		dc, ok := d.Captures[iface].(DropCounter)
		c.a.mu.Unlock()
		if ok {
			ch <- prometheus.MustNewConstMetric(captureDropsDesc, prometheus.CounterValue, float64(dc.Dropped()), iface)
		}
		inst, err := d.Kernel.Inspect(ctx, iface)
		if err != nil || !inst.Ours {
			continue
		}
		st := inst.ThrottledStats
		ch <- prometheus.MustNewConstMetric(throttledBytesDesc, prometheus.CounterValue, float64(st.Bytes), iface)
		ch <- prometheus.MustNewConstMetric(throttledPacketsDesc, prometheus.CounterValue, float64(st.Packets), iface)
		ch <- prometheus.MustNewConstMetric(throttledDropsDesc, prometheus.CounterValue, float64(st.Drops), iface)
	}
	c.a.mu.Lock()
	left := c.a.engine.BudgetLeft(c.a.now())
	c.a.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(budgetLeftDesc, prometheus.GaugeValue, float64(left))
}
