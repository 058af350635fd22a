package e2e

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/internal/lab"
)

// TestKill9NeverLeavesPartialLayout starts a throttle through the agent and
// kills the agent with SIGKILL 0–50 ms later, over and over, sometimes in the
// middle of Apply. After each restart (reconcile) up0 carries either the one
// complete layout the plan renders, recorded in the state file, or nothing.
func TestKill9NeverLeavesPartialLayout(t *testing.T) {
	e := newEnv(t, 0, nil)
	want := lab.PlanLayout(e.cli(0, "plan", "--interface", lab.Uplink))
	t.Logf("plan: %+v", want)
	const iterations = 40
	var partialAfterKill, complete, none int
	for i := range iterations {
		e.startAgent()
		cli, err := e.agent.StartCLI("throttle", "--interface", lab.Uplink, "--ttl", "10m")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(51)) * time.Millisecond)
		e.agent.Proc.Kill()
		_ = cli.Wait(e.ctx)
		if l := e.layout(); l.Classes != 0 && l != want {
			partialAfterKill++
		}
		e.startAgent()
		got := e.layout()
		st := e.status()
		recorded := len(st.Mitigations) == 1 && st.Mitigations[0].Installed
		switch {
		case got == want && recorded:
			complete++
		case got.Classes == 0 && got.Filters == 0 && strings.HasPrefix(got.Root, "noqueue") && len(st.Mitigations) == 0:
			none++
		default:
			t.Fatalf("iteration %d: after restart up0 holds %+v, state %+v: want the plan's %+v recorded, or nothing", i, got, st.Mitigations, want)
		}
		if len(st.Unrecorded) > 0 {
			t.Fatalf("iteration %d: unrecorded layouts after reconcile: %v", i, st.Unrecorded)
		}
		if recorded {
			e.cli(0, "unthrottle", "--interface", lab.Uplink)
		}
		e.agent.Proc.Kill()
	}
	t.Logf("%d kill -9 iterations: %d complete+recorded after restart, %d clean; %d left a partial layout that reconcile removed or completed",
		iterations, complete, none, partialAfterKill)
}

// TestReconcileExpiredAndForeign: a mitigation whose expiry passed while no
// agent ran is removed at start; a foreign root qdisc (tbf) on the watched
// interface reads back the same through a throttle and its release.
func TestReconcileExpiredAndForeign(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.cli(0, "throttle", "--interface", lab.Uplink, "--ttl", "1s")
	if l := e.layout(); l.Classes == 0 {
		t.Fatalf("CLI throttle without agent: up0 holds %+v", l)
	}
	time.Sleep(1500 * time.Millisecond)
	state, err := os.ReadFile(filepath.Join(e.dir, "state", "state.json"))
	if err != nil || !strings.Contains(string(state), `"expires"`) {
		t.Fatalf("state file: %v\n%s", err, state)
	}
	e.startAgent()
	if l := e.layout(); l.Classes != 0 || !strings.HasPrefix(l.Root, "noqueue") {
		t.Errorf("after reconcile of an expired mitigation: up0 holds %+v", l)
	}
	if st := e.status(); len(st.Mitigations) != 0 {
		t.Errorf("after reconcile: mitigations %+v", st.Mitigations)
	}
	if n := len(e.agent.LogEntries("reconcile: removing expired mitigation")); n != 1 {
		t.Errorf("%d expired-removal log lines: want 1", n)
	}
	e.agent.Proc.Kill()

	if _, err := e.lab.Exec(e.ctx, e.lab.Node, "tc", "qdisc", "add", "dev", lab.Uplink, "root", "handle", "7:", "tbf", "rate", "500mbit", "burst", "64k", "latency", "50ms"); err != nil {
		t.Fatal(err)
	}
	root := func() string {
		t.Helper()
		out, err := e.lab.Exec(e.ctx, e.lab.Node, "tc", "qdisc", "show", "dev", lab.Uplink, "root")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := root()
	e.startAgent()
	out := e.cli(0, "throttle", "--interface", lab.Uplink)
	if during := root(); during != before {
		t.Errorf("foreign root changed by the throttle:\nbefore %s\nduring %s", before, during)
	}
	e.cli(0, "unthrottle", "--interface", lab.Uplink)
	if after := root(); after != before {
		t.Errorf("foreign root changed by the release:\nbefore %s\nafter %s", before, after)
	}
	t.Logf("throttle and release over a tbf root left it as it was: %s", strings.TrimSpace(out))
}
