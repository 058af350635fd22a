package shaper

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	eglab "github.com/egressguard/egressguard/internal/lab"
)

// requireTraffic skips the tests that send real packets for seconds.
func requireTraffic(t testing.TB) {
	t.Helper()
	requireRoot(t)
	requireIperf3(t)
	if testing.Short() {
		t.Skip("traffic test: skipped in -short mode")
	}
}

// held runs send in the node namespace and returns the bit/s the throttled
// class let through and the packets it saw (sent or dropped).
func (l lab) held(t testing.TB, send []string) (bps float64, seen uint64) {
	t.Helper()
	b0, p0, d0 := l.throttledStats(t)
	start := time.Now()
	nsRun(t, l.node, send...)
	time.Sleep(200 * time.Millisecond) // the leaf drains (≤ 100 ms)
	b1, p1, d1 := l.throttledStats(t)
	return float64(b1-b0) * 8 / time.Since(start).Seconds(), p1 - p0 + d1 - d0
}

// TestThrottleHoldsEachSignature: floods of each signature (TCP SYN to any
// port, UDP to any port, ICMP) leave the throttled class at no more than
// 1.1x the rate, by scope node and by scope source; a source the throttle
// does not name is not classified at all. The Spec changes in place
// between the cases.
func TestThrottleHoldsEachSignature(t *testing.T) {
	requireTraffic(t)
	synflood, craft := buildTool(t, "synflood"), buildTool(t, "craft")
	l := newLab(t, 1)
	s := l.open(t)
	ctx := context.Background()
	const rate = 2_000_000
	named := labSources()
	self, other := eglab.NodeAddr4.String(), eglab.NodeAddr4.Next().String()
	flood := func(args ...string) []string {
		return append([]string{synflood, "-rate", "20000", "-duration", "3s", "-dst", "198.18.0.0/24"}, args...)
	}
	t.Cleanup(func() { _ = s.Remove(ctx, labDev, Previous{}) })
	for _, c := range []struct {
		name      string
		scope     Scope
		protocols []string
		send      []string
		held      bool
	}{
		{"node: tcp SYN to any port", ScopeNode, []string{"tcp"}, flood("-ports", "1000,5000,33333,40000"), true},
		{"node: udp to any port", ScopeNode, []string{"udp"}, flood("-udp", "-size", "1000", "-ports", "9,4444,53535"), true},
		{"node: icmp", ScopeNode, []string{"icmp"}, []string{craft, "icmp", "-dst", labDst4, "-size", "1000", "-for", "3s"}, true},
		{"node: icmpv6", ScopeNode, []string{"icmp"}, []string{craft, "icmp", "-dst", labDst6, "-size", "1000", "-for", "3s"}, true},
		{"source: udp from the named source", ScopeSource, []string{"udp"}, flood("-udp", "-size", "1000", "-ports", "9", "-src", self), true},
		{"source: tcp SYN from the named source", ScopeSource, []string{"tcp"}, flood("-ports", "1000,5000", "-src", self), true},
		{"source: udp from another source is not classified", ScopeSource, []string{"udp"}, flood("-udp", "-size", "1000", "-ports", "9", "-src", other), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := Spec{Interface: labDev, Scope: c.scope, Rate: rate, Protocols: c.protocols}
			if c.scope == ScopeSource {
				spec.Sources = named
			}
			if _, err := s.Apply(ctx, mustPlan(t, spec, Features{}), ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			bps, seen := l.held(t, c.send)
			t.Logf("throttled class: %.3f Mbit/s at rate %.1f Mbit/s (%d packets seen)", bps/1e6, float64(rate)/1e6, seen)
			switch {
			case c.held && seen == 0:
				t.Fatal("no packet reached the throttled class: the flood escaped")
			case c.held && bps > 1.1*rate:
				t.Errorf("throttled class sent %.3f Mbit/s, above 1.1x the rate", bps/1e6)
			case !c.held && seen != 0:
				t.Errorf("%d packets of a source the throttle does not name reached the throttled class", seen)
			}
		})
	}
}

// median of three runs of fn, so one disturbed run on a shared machine does
// not decide.
func median3(fn func() float64) float64 {
	v := []float64{fn(), fn(), fn()}
	slices.Sort(v)
	return v[1]
}

// layoutRuns measures each named setup in rounds, interleaved, so that the
// load other work puts on the machine meanwhile spreads over all of them:
// every round installs each setup, runs measure, and removes it. It
// returns the median per setup and measurement.
func layoutRuns(rounds int, setups []setup, measure func() []float64) map[string][]float64 {
	all := map[string][][]float64{}
	for range rounds {
		for _, s := range setups {
			s.install()
			all[s.name] = append(all[s.name], measure())
			s.remove()
		}
	}
	out := map[string][]float64{}
	for name, runs := range all {
		for i := range runs[0] {
			var v []float64
			for _, r := range runs {
				v = append(v, r[i])
			}
			slices.Sort(v)
			out[name] = append(out[name], v[len(v)/2])
		}
	}
	return out
}

type setup struct {
	name            string
	install, remove func()
}

// TestUnthrottledTrafficKeepsItsSpeed measures, interleaved in one run,
// unthrottled TCP (1 and 4 streams to port 5201) with no throttle, with the
// clsact layout throttling tcp+udp 80,443, and with the previous release's
// root-HTB layout doing the same, unpaced: those figures are logged next to
// each other. The assertions use streams paced at 200 Mbit/s each, so that
// they judge shaping and not the CPU time other work leaves us: unthrottled
// traffic, SSH and a mesh port (while the throttle takes every TCP port)
// keep 0.95 of their paced throughput.
func TestUnthrottledTrafficKeepsItsSpeed(t *testing.T) {
	requireTraffic(t)
	l := newLab(t, 4)
	l.addTargets(t)
	for _, port := range []int{5201, 22, 51820} {
		l.iperfServer(t, labDst4, port)
	}
	s := l.open(t)
	ctx := context.Background()
	iperf := func(port, streams int, extra ...string) float64 {
		return l.iperf(t, labDst4, port, append([]string{"-t", "2", "-P", strconv.Itoa(streams)}, extra...)...)
	}
	const pace = 200e6
	paced := func(port, streams int) float64 { return iperf(port, streams, "-b", "200M") }
	legacy, err := os.ReadFile("testdata/legacy_root_htb.tc")
	if err != nil {
		t.Fatal(err)
	}
	apply := func(spec Spec) func() {
		return func() {
			_, err := s.Apply(ctx, mustPlan(t, spec, Features{}), ApplyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Remove(ctx, labDev, Previous{}) })
		}
	}
	remove := func() {
		if err := s.Remove(ctx, labDev, Previous{}); err != nil {
			t.Fatal(err)
		}
	}
	nothing := func() {}
	every := Spec{Interface: labDev, Scope: ScopeNode, Rate: 1_000_000, Protocols: []string{"tcp"}, WhitelistPorts: []uint16{51820}}

	clsact := apply(labSpec(1_000_000))
	got := layoutRuns(3, []setup{
		{"none", nothing, nothing},
		{"clsact", clsact, remove},
		{"root-htb", func() {
			for _, line := range strings.Split(strings.TrimSpace(string(legacy)), "\n") {
				nsRun(t, l.node, "sh", "-c", line)
			}
		}, func() { nsRun(t, l.node, "tc", "qdisc", "del", "dev", labDev, "root") }},
	}, func() []float64 { return []float64{iperf(5201, 1), iperf(5201, 4)} })
	for i, streams := range []string{"1 stream", "4 streams"} {
		none, ours, rootHTB := got["none"][i], got["clsact"][i], got["root-htb"][i]
		t.Logf("unthrottled tcp/5201, %s, unpaced: none %.2f Gbit/s, clsact+ifb %.2f (%.2fx), root-HTB %.2f (%.2fx)",
			streams, none/1e9, ours/1e9, ours/none, rootHTB/1e9, rootHTB/none)
	}

	pacedRuns := layoutRuns(3, []setup{
		{"none", nothing, nothing},
		{"clsact", clsact, remove},
		{"every-tcp", apply(every), remove},
	}, func() []float64 { return []float64{paced(5201, 1), paced(5201, 4), paced(22, 1), paced(51820, 1)} })
	for i, c := range []struct{ name, setup string }{
		{"tcp/5201 1 stream", "clsact"}, {"tcp/5201 4 streams", "clsact"},
		{"ssh/22 (every TCP port throttled)", "every-tcp"}, {"mesh/51820 (every TCP port throttled)", "every-tcp"},
	} {
		none, with := pacedRuns["none"][i], pacedRuns[c.setup][i]
		t.Logf("%s paced at %.0f Mbit/s per stream: %.1f Mbit/s with the throttle, %.1f without (%.3fx)", c.name, pace/1e6, with/1e6, none/1e6, with/none)
		if with < 0.95*none {
			t.Errorf("%s: %.1f Mbit/s with the throttle, %.1f without: below 0.95", c.name, with/1e6, none/1e6)
		}
	}
}

var reNftPackets = regexp.MustCompile(`counter packets (\d+)`)

// TestUpdateLeavesNoUnshapedWindow: during 50 in-place updates between two
// Specs that both throttle udp/443, a UDP flood to 443 never reaches the
// internet namespace except through the throttled class: every packet an
// nftables counter there sees was sent by the class.
func TestUpdateLeavesNoUnshapedWindow(t *testing.T) {
	requireTraffic(t)
	craft := buildTool(t, "craft")
	l := newLab(t, 1)
	s := l.open(t)
	ctx := context.Background()
	a := mustPlan(t, labSpec(1_000_000), Features{})
	bSpec := labSpec(2_000_000)
	bSpec.Protocols, bSpec.Ports = []string{"udp"}, Ports(443, 8443)
	b := mustPlan(t, bSpec, Features{})
	_, err := s.Apply(ctx, a, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Remove(ctx, labDev, Previous{}) })
	for _, c := range []string{
		"add table inet egs", "add chain inet egs in { type filter hook prerouting priority 0; }",
		"add rule inet egs in udp dport 443 counter",
	} {
		nsRun(t, l.inet, append([]string{"nft"}, strings.Fields(c)...)...)
	}
	_, p0, _ := l.throttledStats(t)
	flood := exec.Command("ip", "netns", "exec", l.node, craft, "udp", "-dst", labDst4, "-port", "443", "-size", "100", "-for", "3s")
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flood.Process.Kill(); _ = flood.Wait() })
	time.Sleep(300 * time.Millisecond)
	for i := range 50 {
		next := a
		if i%2 == 0 {
			next = b
		}
		if res, err := s.Apply(ctx, next, ApplyOptions{}); err != nil || !res.Changed {
			t.Fatalf("update %d = %+v, %v", i, res, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := flood.Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	_, p1, _ := l.throttledStats(t)
	m := reNftPackets.FindStringSubmatch(nsRun(t, l.inet, "nft", "list", "table", "inet", "egs"))
	if m == nil {
		t.Fatal("no nft counter")
	}
	arrived, _ := strconv.ParseUint(m[1], 10, 64)
	t.Logf("during 50 updates: %d udp/443 packets arrived, %d sent by the throttled class", arrived, p1-p0)
	if arrived == 0 || arrived > p1-p0 {
		t.Errorf("%d packets arrived, the throttled class sent %d: %d escaped", arrived, p1-p0, int64(arrived)-int64(p1-p0))
	}
}

// TestPortScopeThrottlesOneSpoofingVM: vm1 floods UDP with spoofed source
// addresses (a scope source throttle could name none of them); a port
// throttle on vnet1's ingress holds it to 1.1x the rate, while vm2's
// TCP/443 keeps its throughput (the target is 0.9x of its unthrottled
// figure; asserted loosely at 0.6 on a shared machine).
func TestPortScopeThrottlesOneSpoofingVM(t *testing.T) {
	requireTraffic(t)
	synflood := buildTool(t, "synflood")
	hv := eglab.NewTWith(t, "egs", eglab.Options{VMs: 2})
	l := lab{node: hv.Node, inet: hv.Inet}
	l.addTargets(t)
	l.iperfServer(t, labDst4, 443)
	vm1, vm2 := hv.VMs[0], hv.VMs[1]
	vm2Rate := func() float64 {
		return median3(func() float64 { return lab{node: vm2.NS}.iperf(t, labDst4, 443, "-t", "2") })
	}
	before := vm2Rate()
	s := l.open(t)
	ctx := context.Background()
	const rate = 5_000_000
	spec := Spec{Interface: vm1.Port, Scope: ScopePort, Rate: rate, Protocols: []string{"tcp", "udp"}}
	if _, err := s.Apply(ctx, mustPlan(t, spec, Features{}), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Remove(ctx, vm1.Port, Previous{}); err != nil {
			t.Error(err)
		}
		if out := nsRun(t, l.node, "ip", "-o", "link", "show", "type", "ifb"); strings.TrimSpace(out) != "" {
			t.Errorf("ifb left behind:\n%s", out)
		}
	}()
	if f := nsRun(t, l.node, "tc", "filter", "show", "dev", vm1.Port, "ingress"); !strings.Contains(f, "Egress Redirect to device "+ShapingDevice(vm1.Port)) {
		t.Fatalf("no classifier on %s ingress:\n%s", vm1.Port, f)
	}
	stats := func() (bytes, seen uint64) {
		by, p, d := l.throttledStatsOf(t, vm1.Port)
		return by, p + d
	}
	b0, s0 := stats()
	start := time.Now()
	flood := exec.Command("ip", "netns", "exec", vm1.NS, synflood, "-udp", "-size", "1000", "-rate", "20000", "-duration", "8s",
		"-dst", "198.18.0.0/24", "-ports", "443,9", "-spoof", "10.200.0.0/16")
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flood.Process.Kill(); _ = flood.Wait() })
	time.Sleep(300 * time.Millisecond)
	during := vm2Rate()
	if err := flood.Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	b1, s1 := stats()
	bps := float64(b1-b0) * 8 / time.Since(start).Seconds()
	t.Logf("spoofing vm1 (UDP from 10.200.0.0/16, 20k pps of 1000 B) held at %.3f Mbit/s for rate %.1f Mbit/s (%d packets seen)",
		bps/1e6, float64(rate)/1e6, s1-s0)
	t.Logf("vm2 tcp/443: %.2f Gbit/s unthrottled, %.2f Gbit/s during vm1's port throttle (%.2fx)", before/1e9, during/1e9, during/before)
	if s1 == s0 {
		t.Fatal("vm1's flood never reached the throttled class")
	}
	if bps > 1.1*rate {
		t.Errorf("vm1 held at %.3f Mbit/s, above 1.1x the rate", bps/1e6)
	}
	if during < 0.6*before {
		t.Errorf("vm2's tcp/443 fell to %.2fx of its unthrottled throughput", during/before)
	}
}

var reBacklog = regexp.MustCompile(`backlog (\d+)b (\d+)p`)

// TestLeafBoundsQueueInBytes: a bulk TCP upload (GSO on) through a 1 Mbit/s
// throttle never queues more bytes in the leaf than its limit, rate × 100 ms:
// tc's backlog is the oracle, sampled while the upload runs.
func TestLeafBoundsQueueInBytes(t *testing.T) {
	requireTraffic(t)
	l := newLab(t, 1)
	l.addTargets(t)
	l.iperfServer(t, labDst4, 443)
	s := l.open(t)
	ctx := context.Background()
	const rate = 1_000_000
	p := mustPlan(t, labSpec(rate), Features{})
	if _, err := s.Apply(ctx, p, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Remove(ctx, labDev, Previous{}) })
	upload := exec.Command("ip", "netns", "exec", l.node, "iperf3", "-c", labDst4, "-p", "443", "-t", "4")
	if err := upload.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = upload.Process.Kill(); _ = upload.Wait() })
	time.Sleep(500 * time.Millisecond)
	var maxBytes, atPackets uint64
	for range 30 {
		out := nsRun(t, l.node, "tc", "-s", "qdisc", "show", "dev", ShapingDevice(labDev), "parent", ThrottledClass.String())
		if m := reBacklog.FindStringSubmatch(out); m != nil {
			b, _ := strconv.ParseUint(m[1], 10, 64)
			n, _ := strconv.ParseUint(m[2], 10, 64)
			if b > maxBytes {
				maxBytes, atPackets = b, n
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s leaf limit %d B: largest backlog seen %d B in %d packets, %.0f ms at %d bit/s",
		p.Leaf.Kind, p.Leaf.Limit, maxBytes, atPackets, float64(maxBytes)*8/rate*1000, rate)
	if maxBytes == 0 {
		t.Fatal("the upload never queued in the throttled class")
	}
	if maxBytes > uint64(p.Leaf.Limit) {
		t.Errorf("backlog %d B above the leaf's %d B", maxBytes, p.Leaf.Limit)
	}
}
