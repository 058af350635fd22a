package shaper

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// The two benchmarks install then remove the full default layout (22
// objects) on a veth in a namespace: once over netlink, once by running
// Render's tc commands through `ip netns exec`. scripts/bench-shaper.sh
// runs both in one invocation and prints the ratio.

func BenchmarkApplyNetlink(b *testing.B) {
	requireRoot(b)
	ctx := context.Background()
	l := newLab(b, 1)
	s := l.open(b)
	p := mustPlan(b, labSpec())
	for b.Loop() {
		res, err := s.Apply(ctx, p, ApplyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Remove(ctx, labDev, res.Previous); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyTCCommands(b *testing.B) {
	requireRoot(b)
	l := newLab(b, 1)
	var cmds [][]string
	for _, line := range strings.Split(strings.TrimSpace(mustPlan(b, labSpec()).Render()), "\n") {
		cmds = append(cmds, strings.Fields(line))
	}
	cmds = append(cmds, []string{"tc", "qdisc", "del", "dev", labDev, "root"})
	for b.Loop() {
		for _, c := range cmds {
			if out, err := exec.Command("ip", append([]string{"netns", "exec", l.node}, c...)...).CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
			}
		}
	}
}
