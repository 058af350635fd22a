package agent

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the agent's Prometheus series (STYLE: egressguard_ prefix,
// base units, bounded labels: never an address or a port).
type metrics struct {
	reg          *prometheus.Registry
	txBytes      *prometheus.GaugeVec
	txPackets    *prometheus.GaugeVec
	synOut       *prometheus.GaugeVec
	synAckIn     *prometheus.GaugeVec
	fanOut       *prometheus.GaugeVec
	verdict      *prometheus.GaugeVec
	active       *prometheus.GaugeVec
	expiry       *prometheus.GaugeVec
	throttledB   *prometheus.GaugeVec
	throttledD   *prometheus.GaugeVec
	actions      *prometheus.CounterVec
	refused      *prometheus.CounterVec
	drift        *prometheus.CounterVec
	evicted      prometheus.Counter
	evidence     prometheus.Counter
	captureDrops *prometheus.GaugeVec
}

var verdictStates = []string{"clean", "attention", "flood"}

func newMetrics(version string) *metrics {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "egressguard_" + name, Help: help}, labels)
	}
	m := &metrics{
		reg:        prometheus.NewRegistry(),
		txBytes:    g("interface_transmit_bytes_per_second", "Transmit rate of a watched interface.", "interface"),
		txPackets:  g("interface_transmit_packets_per_second", "Transmit packet rate of a watched interface.", "interface"),
		synOut:     g("interface_syn_out_per_second", "Outbound TCP SYN rate (offered, including what the throttle dropped).", "interface"),
		synAckIn:   g("interface_synack_in_per_second", "Inbound TCP SYN-ACK rate.", "interface"),
		fanOut:     g("interface_destinations", "Distinct destination addresses in the last interval (estimate).", "interface"),
		verdict:    g("interface_verdict", "1 for the detector's current state of the interface.", "interface", "state"),
		active:     g("mitigations_active", "Mitigations in force, by interface and reason.", "interface", "reason"),
		expiry:     g("mitigation_expiry_timestamp_seconds", "When the mitigation on the interface expires unless renewed.", "interface"),
		throttledB: g("throttled_sent_bytes", "Bytes the throttled class sent since it was installed.", "interface"),
		throttledD: g("throttled_dropped_packets", "Packets the throttled class dropped since it was installed.", "interface"),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressguard_actions_total", Help: "Kernel actions taken, by action (throttle, update, release) and reason.",
		}, []string{"action", "reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressguard_actions_refused_total", Help: "Actions refused, by why (observe, budget, paused, whitelist, max_ttl, no_sources, error).",
		}, []string{"reason"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressguard_mitigation_drift_total",
			Help: "Times the kernel or the state file no longer held a mitigation in force, by what the agent did (reinstall, release, record).",
		}, []string{"interface", "action"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "egressguard_http_connections_evicted_total",
			Help: "HTTP connections closed to stay within the connection cap (the longest idle first).",
		}),
		evidence: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "egressguard_evidence_bundles_written_total", Help: "Evidence bundles written under the state directory.",
		}),
		captureDrops: g("capture_ring_dropped_packets", "Frames the capture ring dropped since start (sampling adapts to keep this low).", "interface"),
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "egressguard_build_info", Help: "Build information; always 1."}, []string{"version", "goversion"})
	info.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(m.txBytes, m.txPackets, m.synOut, m.synAckIn, m.fanOut, m.verdict, m.active, m.expiry,
		m.throttledB, m.throttledD, m.actions, m.refused, m.drift, m.evicted, m.evidence, m.captureDrops, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"observe", "budget", "paused", "whitelist", "max_ttl", "no_sources", "error"} {
		m.refused.WithLabelValues(r)
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
