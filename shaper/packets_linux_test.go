package shaper

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildTool compiles a command under scripts/ into the test's temp dir.
func buildTool(t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "../scripts/"+name).CombinedOutput(); err != nil {
		t.Fatalf("build scripts/%s: %v\n%s", name, err, out)
	}
	return bin
}

var reSent = regexp.MustCompile(`Sent (\d+) bytes (\d+) pkt \(dropped (\d+)`)

// throttledStats reads the throttled class's counters of labDev with tc,
// the oracle.
func (l lab) throttledStats(t testing.TB) (bytes, pkts, drops uint64) {
	t.Helper()
	return l.throttledStatsOf(t, labDev)
}

// throttledStatsOf reads the throttled class's counters on dev's shaping
// device with tc.
func (l lab) throttledStatsOf(t testing.TB, dev string) (bytes, pkts, drops uint64) {
	t.Helper()
	out := nsRun(t, l.node, "tc", "-s", "class", "show", "dev", ShapingDevice(dev), "classid", ThrottledClass.String())
	m := reSent.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no counters in:\n%s", out)
	}
	b, _ := strconv.ParseUint(m[1], 10, 64)
	p, _ := strconv.ParseUint(m[2], 10, 64)
	d, _ := strconv.ParseUint(m[3], 10, 64)
	return b, p, d
}

// TestCraftedPacketsHeld sends, through a 1mbit throttle of tcp+udp 443,
// what fixed-offset u32 filters let pass: TCP with IP options, UDP
// datagrams of 60000 bytes (IPv4 fragments), IPv6 TCP with a Destination
// Options header, and 802.1Q-tagged frames. Each must reach the throttled
// class and leave it at no more than 1.1x the rate.
func TestCraftedPacketsHeld(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("sends real packets for several seconds")
	}
	craft := buildTool(t, "craft")
	l := newLab(t, 1)
	sink := exec.Command("ip", "netns", "exec", l.inet, craft, "sink", "-port", "443")
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Process.Kill(); _ = sink.Wait() })
	time.Sleep(300 * time.Millisecond)
	const rate = 1_000_000
	s := l.open(t)
	ctx := context.Background()
	spec := labSpec(rate)
	spec.Ports = Ports(443)
	_, err := s.Apply(ctx, mustPlan(t, spec, Features{}), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Remove(ctx, labDev, Previous{}) })
	const dur = 3 * time.Second
	for _, c := range []struct{ name, mode, dst string }{
		{"tcp/443 with IP options", "tcp-ipopts", labDst4},
		{"udp/443 60000-byte datagrams (fragments)", "udp", labDst4},
		{"ipv6 tcp/443 with destination options", "tcp6-dstopts", labDst6},
		{"802.1Q-tagged udp/443", "vlan", labDst4},
	} {
		t.Run(c.name, func(t *testing.T) {
			b0, p0, d0 := l.throttledStats(t)
			start := time.Now()
			out := nsRun(t, l.node, craft, c.mode, "-dst", c.dst, "-port", "443", "-dev", labDev, "-for", dur.String())
			time.Sleep(200 * time.Millisecond) // the leaf drains (≤ 100 ms)
			elapsed := time.Since(start).Seconds()
			b1, p1, d1 := l.throttledStats(t)
			offered, _ := strconv.ParseFloat(strings.TrimSpace(out), 64)
			got := float64(b1-b0) * 8 / elapsed
			t.Logf("offered %.1f Mbit/s; throttled class sent %.3f Mbit/s (%d pkts, %d dropped) at rate %.1f Mbit/s",
				offered*8/dur.Seconds()/1e6, got/1e6, p1-p0, d1-d0, float64(rate)/1e6)
			if p1-p0+d1-d0 == 0 {
				t.Fatal("no packet reached the throttled class: the flood escaped")
			}
			if got > 1.1*rate {
				t.Errorf("throttled class sent %.3f Mbit/s, above 1.1x the rate", got/1e6)
			}
		})
	}
}
