package shaper

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// The two benchmarks install then remove the default layout (ifb device,
// htb root, class, leaf, clsact, classifier) on a veth in a namespace: once
// over netlink, once by running Render's ip and tc commands through
// `ip netns exec … sh -c`. scripts/bench-shaper.sh
// runs both in one invocation and prints the ratio.

func BenchmarkApplyNetlink(b *testing.B) {
	requireRoot(b)
	ctx := context.Background()
	l := newLab(b, 1)
	s := l.open(b)
	p := mustPlan(b, labSpec(1_000_000), Features{})
	for b.Loop() {
		if _, err := s.Apply(ctx, p, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := s.Remove(ctx, labDev, Previous{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyTCCommands(b *testing.B) {
	requireRoot(b)
	l := newLab(b, 1)
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(mustPlan(b, labSpec(1_000_000), Features{}).Render()), "\n") {
		if !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	cmds = append(cmds, "tc filter del dev "+labDev+" egress prio 233", "ip link del eg-"+labDev, "tc qdisc del dev "+labDev+" clsact")
	for b.Loop() {
		for _, c := range cmds {
			if out, err := exec.Command("ip", "netns", "exec", l.node, "sh", "-c", c).CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", c, err, out)
			}
		}
	}
}
