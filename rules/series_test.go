package rules

import (
	"slices"
	"testing"
)

func TestMetricNames(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want []string
	}{
		{`egressguard_interface_verdict{state="flood"} == 1`, []string{"egressguard_interface_verdict"}},
		{`up{job="egressguard"} == 0 or absent(up{job="egressguard"})`, []string{"up", "up"}},
		{`sum by (job, instance, device) (rate(node_network_transmit_bytes_total{device!~"lo|veth.*"}[5m]))`, []string{"node_network_transmit_bytes_total"}},
		{`a:b:rate5m > 125e6 unless on (job, instance) (node_network_speed_bytes > 0)`, []string{"a:b:rate5m", "node_network_speed_bytes"}},
		{`count(max by (instance) (x) == 1) or vector(0)`, []string{"x"}},
		{`time() - egressguard_mitigation_expiry_timestamp_seconds > 600 and egressguard_mitigations_active`, []string{"egressguard_mitigation_expiry_timestamp_seconds", "egressguard_mitigations_active"}},
		{`sum without (reason) (m) * on (instance) group_left (node) info`, []string{"m", "info"}},
	} {
		if got := MetricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("MetricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func TestSeriesNames(t *testing.T) {
	names, err := SeriesNames()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("series read by the rules and the dashboard: %q", names)
	for _, want := range []string{"egressguard_interface_verdict", "egressguard_throttled_dropped_packets_total", "node_network_transmit_bytes_total", "up"} {
		if !slices.Contains(names, want) {
			t.Errorf("SeriesNames lacks %s", want)
		}
	}
	if slices.Contains(names, "instance_device:node_network_transmit_bytes:rate5m") {
		t.Error("SeriesNames holds a series the rules record themselves")
	}
}
