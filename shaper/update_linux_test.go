package shaper

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// kernelHandles matches the parts of `tc filter show` the kernel picks by
// itself (u32 node and hash table ids, insertion order).
var kernelHandles = regexp.MustCompile(`fh [0-9a-f:]+|ht [0-9a-f]+|order \d+`)

func sameUpToKernelHandles(a, b string) bool {
	return kernelHandles.ReplaceAllString(a, "#") == kernelHandles.ReplaceAllString(b, "#")
}

func updatedSpec() Spec {
	s := labSpec()
	s.Rate = 2_000_000
	s.Ports = []uint16{443, 8443}
	s.Sources = labSources()
	return s
}

// TestApplyFailureLeavesInterfaceAsBefore makes each kernel write of an
// install and of an update fail in turn and compares tc's view before and
// after.
func TestApplyFailureLeavesInterfaceAsBefore(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	l := newLab(t, 1)
	s := l.open(t)
	p, p2 := mustPlan(t, labSpec()), mustPlan(t, updatedSpec())
	pristine := l.tcShow(t)

	start := s.writes
	res, err := s.Apply(ctx, p, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	installWrites := s.writes - start
	if err := s.Remove(ctx, labDev, res.Previous); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= installWrites; n++ {
		s.failAt = s.writes + n
		if _, err := s.Apply(ctx, p, ApplyOptions{}); !errors.Is(err, errInjected) {
			t.Fatalf("install failing at write %d: err = %v, want the injected failure", n, err)
		}
		if got := l.tcShow(t); got != pristine {
			t.Fatalf("install failing at write %d/%d left:\n%s\nwant:\n%s", n, installWrites, got, pristine)
		}
	}
	s.failAt = 0

	if _, err := s.Apply(ctx, p, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	installed := l.tcShow(t)
	start = s.writes
	if _, err := s.Apply(ctx, p2, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	updateWrites := s.writes - start
	if _, err := s.Apply(ctx, p, ApplyOptions{}); err != nil { // back to p, now in band 0 again
		t.Fatal(err)
	}
	for n := 1; n <= updateWrites; n++ {
		s.failAt = s.writes + n
		if _, err := s.Apply(ctx, p2, ApplyOptions{}); !errors.Is(err, errInjected) {
			t.Fatalf("update failing at write %d: err = %v, want the injected failure", n, err)
		}
		if got := l.tcShow(t); !sameUpToKernelHandles(got, installed) {
			t.Fatalf("update failing at write %d/%d left:\n%s\nwant:\n%s", n, updateWrites, got, installed)
		}
	}
	t.Logf("checked %d install and %d update failure points", installWrites, updateWrites)
}

// TestReapplyIsNoopAndUpdateIsInPlace: the same Plan writes nothing; a new
// rate, ports and sources land in the other band; and during 50 updates a
// UDP flood to 443 never reaches the unthrottled class.
func TestReapplyIsNoopAndUpdateIsInPlace(t *testing.T) {
	requireRoot(t)
	requireIperf3(t)
	ctx := context.Background()
	l := newLab(t, 1)
	s := l.open(t)
	p, p2 := mustPlan(t, labSpec()), mustPlan(t, updatedSpec())
	if _, err := s.Apply(ctx, p, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before, writes := l.tcShow(t), s.writes
	res, err := s.Apply(ctx, p, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Replaced || s.writes != writes {
		t.Fatalf("re-apply = %+v with %d kernel writes, want no change and none", res, s.writes-writes)
	}
	if after := l.tcShow(t); after != before {
		t.Fatalf("re-apply changed tc output:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	res, err = s.Apply(ctx, p2, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Replaced {
		t.Fatalf("update = %+v, want Changed and not Replaced", res)
	}
	checkInstalled(t, l, p2, 1)
	if res, err = s.Apply(ctx, p2, ApplyOptions{}); err != nil || res.Changed {
		t.Fatalf("re-apply after update = %+v, %v; want no change", res, err)
	}

	// Drift made by hand (another leaf kind, another rate) is repaired.
	nsRun(t, l.node, "tc", "qdisc", "del", "dev", labDev, "parent", "e9:10")
	nsRun(t, l.node, "tc", "qdisc", "add", "dev", labDev, "parent", "e9:10", "handle", "e910:", "bfifo", "limit", "3000")
	nsRun(t, l.node, "tc", "class", "change", "dev", labDev, "parent", "e9:1", "classid", "e9:20", "htb", "rate", "5mbit")
	if res, err = s.Apply(ctx, p2, ApplyOptions{}); err != nil || !res.Changed {
		t.Fatalf("apply over drift = %+v, %v; want a change", res, err)
	}
	checkInstalled(t, l, p2, 1)

	// Only the flood and its iperf3 control connection (both to 443) leave
	// the node: no IPv6 and a permanent neighbour, so any packet counted by
	// the unthrottled class during the updates escaped the throttle.
	nsRun(t, l.node, "sysctl", "-qw", "net.ipv6.conf."+labDev+".disable_ipv6=1")
	mac := strings.TrimSpace(nsRun(t, l.inet, "cat", "/sys/class/net/"+labPeer+"/address"))
	nsRun(t, l.node, "ip", "neigh", "replace", labGateway4, "lladdr", mac, "dev", labDev, "nud", "permanent")
	l.addTargets(t)
	l.iperfServer(t, labDst4, 443)
	flood := exec.Command("ip", "netns", "exec", l.node, "iperf3", "-c", labDst4, "-p", "443", "-u", "-b", "20M", "-l", "100", "-t", "4")
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flood.Process.Kill(); _ = flood.Wait() })
	time.Sleep(500 * time.Millisecond) // let the flood start
	first, err := s.Inspect(ctx, labDev)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		next := p2 // installed before the loop
		if i%2 == 0 {
			next = p
		}
		if res, err := s.Apply(ctx, next, ApplyOptions{}); err != nil || !res.Changed {
			t.Fatalf("update %d = %+v, %v", i, res, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	last, err := s.Inspect(ctx, labDev)
	if err != nil {
		t.Fatal(err)
	}
	escaped := last.OtherStats.Packets - first.OtherStats.Packets
	throttled := (last.ThrottledStats.Packets + last.ThrottledStats.Drops) - (first.ThrottledStats.Packets + first.ThrottledStats.Drops)
	t.Logf("during 50 updates: %d packets to 443 classified throttled (sent or dropped), %d reached the unthrottled class", throttled, escaped)
	if escaped != 0 || throttled == 0 {
		t.Errorf("during updates %d packets went unthrottled and %d throttled; want 0 and > 0", escaped, throttled)
	}
}
