package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/internal/lab"
)

// TestCommandsLeaveNoTrace runs the commands that say they change nothing
// (plan, doctor, status) with only the packaged unit's capabilities (which
// cannot create a network namespace) and under its system call filter: each succeeds (the kernel probe needs
// neither a namespace nor a veth), no link event occurs, the node's
// interfaces and qdiscs are as before, and the kernel log gains no "Caught tx_queue_len zero misconfig"
// line for the loopback the probe asks on.
func TestCommandsLeaveNoTrace(t *testing.T) {
	e := newEnv(t, 0, nil)
	state := func() string {
		links, err := e.lab.Exec(e.ctx, e.lab.Node, "ip", "-d", "link", "show")
		if err != nil {
			t.Fatal(err)
		}
		qdiscs, err := e.lab.Exec(e.ctx, e.lab.Node, "tc", "qdisc", "show")
		if err != nil {
			t.Fatal(err)
		}
		filters, err := e.lab.Exec(e.ctx, e.lab.Node, "tc", "filter", "show", "dev", "lo", "ingress")
		if err != nil {
			t.Fatal(err)
		}
		return links + qdiscs + filters
	}
	kmsg := func() int {
		out, err := exec.Command("dmesg").Output()
		if err != nil {
			t.Skipf("dmesg: %v", err)
		}
		return strings.Count(string(out), "lo: Caught tx_queue_len zero misconfig")
	}
	before, logBefore := state(), kmsg()
	// A probe that made and removed a device would leave the state as it
	// was; the link events tell.
	mon, err := e.lab.Start(e.lab.Node, "ip", "monitor", "link")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	for _, args := range [][]string{{"plan", "--interface", lab.Uplink}, {"doctor"}, {"status"}} {
		out, code, err := e.agent.CLIConfined(e.ctx, args...)
		if err != nil || code != 0 {
			t.Errorf("egressguard %s under the unit's confinement: exit %d, %v\n%s", strings.Join(args, " "), code, err, out)
		}
		if strings.Contains(out, "not probed") {
			t.Errorf("egressguard %s: a probe failed under the unit's confinement:\n%s", strings.Join(args, " "), out)
		}
	}
	time.Sleep(200 * time.Millisecond)
	mon.Kill()
	if out := strings.TrimSpace(mon.Output()); out != "" {
		t.Errorf("link events while the commands ran:\n%s", out)
	}
	if after := state(); after != before {
		t.Errorf("the node changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n := kmsg() - logBefore; n > 0 {
		t.Errorf("%d new \"lo: Caught tx_queue_len zero misconfig\" kernel log lines", n)
	}
}
