package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/internal/lab"
)

// TestUnreadableStateFileKeepsProtecting, on a real kernel: the state file
// is truncated under a throttle; the restarted agent becomes ready, keeps
// the file aside, rebuilds the record from the layout and can release it.
func TestUnreadableStateFileKeepsProtecting(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.startAgent()
	e.cli(0, "throttle", "--interface", lab.Uplink, "--ttl", "10m")
	if err := e.agent.Stop(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.dir, "state", state.FileName)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	e.startAgent()
	for _, l := range e.agent.LogEntries("state file unreadable: moved aside and rebuilt from the kernel; check the kept file") {
		t.Logf("recovery log: %v", l)
	}
	if len(e.agent.LogEntries("state file unreadable: moved aside and rebuilt from the kernel; check the kept file")) != 1 {
		t.Errorf("no recovery line in the log:\n%s", tail(e.agent.Proc.Output(), 20))
	}
	st := e.status()
	if len(st.Mitigations) != 1 || !st.Mitigations[0].Installed || st.Mitigations[0].Owners[0] != "recovered" {
		t.Fatalf("after recovery: %+v; want the layout kept under a rebuilt record", st.Mitigations)
	}
	if kept, _ := filepath.Glob(path + ".unreadable-*"); len(kept) != 1 {
		t.Errorf("kept files %v", kept)
	}
	e.cli(0, "unthrottle", "--interface", lab.Uplink)
	if l := e.layout(); l.Classes != 0 {
		t.Errorf("after unthrottle up0 holds %+v", l)
	}
}

// TestSecondAgentExitsNamingTheFirst: a second agent on the
// same state_dir exits 1 naming the first one's pid, and changes nothing.
func TestSecondAgentExitsNamingTheFirst(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.startAgent()
	e.cli(0, "throttle", "--interface", lab.Uplink, "--ttl", "10m")
	before := e.layout()
	out, code, err := e.agent.CLI(e.ctx, "run")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second agent: exit %d: %s", code, strings.TrimSpace(out))
	if code != 1 || !strings.Contains(out, "pid "+strconv.Itoa(e.agent.Proc.Pid())) {
		t.Fatalf("second agent: exit %d, %q; want exit 1 naming pid %d", code, out, e.agent.Proc.Pid())
	}
	time.Sleep(1500 * time.Millisecond) // a tick of the first agent
	if after := e.layout(); after != before {
		t.Errorf("the second agent changed the layout: %+v -> %+v", before, after)
	}
	if st := e.status(); len(st.Mitigations) != 1 || !st.Mitigations[0].Installed {
		t.Errorf("the first agent's mitigation after the second start: %+v", st.Mitigations)
	}
}

// TestOperatorRootIsNeverClobbered on a real kernel: an operator sets a
// tbf root on the throttled uplink; the layout, which never holds the root,
// carries on beside it, a throttle update succeeds and the tbf stays. When
// the operator deletes our classifier instead, the agent notices on its next
// interval (logged, counted) and puts it back.
func TestOperatorRootIsNeverClobbered(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.startAgent()
	e.cli(0, "throttle", "--interface", lab.Uplink, "--ttl", "10m")
	if _, err := e.lab.Exec(e.ctx, e.lab.Node, "tc", "qdisc", "replace", "dev", lab.Uplink, "root", "handle", "5:", "tbf",
		"rate", "10mbit", "burst", "32k", "latency", "400ms"); err != nil {
		t.Fatal(err)
	}
	root := func() string {
		out, err := e.lab.Exec(e.ctx, e.lab.Node, "tc", "qdisc", "show", "dev", lab.Uplink, "root")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tbf := root()
	time.Sleep(1500 * time.Millisecond) // a tick of the agent
	if st := e.status(); len(st.Mitigations) != 1 || !st.Mitigations[0].Installed {
		t.Fatalf("mitigations beside the operator's tbf: %+v; want it kept and installed", st.Mitigations)
	}
	e.cli(0, "throttle", "--interface", lab.Uplink, "--rate", "2mbit")
	if got := root(); got != tbf || !strings.HasPrefix(got, "qdisc tbf 5: root") {
		t.Errorf("the operator's tbf changed: %s, was %s", got, tbf)
	}

	if _, err := e.lab.Exec(e.ctx, e.lab.Node, "tc", "filter", "del", "dev", lab.Uplink, "egress", "prio", "233"); err != nil {
		t.Fatal(err)
	}
	const drift = "drift: the egressguard layout is gone; reinstalling it"
	for deadline := time.Now().Add(5 * time.Second); len(e.agent.LogEntries(drift)) == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if len(e.agent.LogEntries(drift)) == 0 {
		t.Fatalf("drift not logged:\n%s", tail(e.agent.Proc.Output(), 20))
	}
	if n := e.metricValue("egressguard_mitigation_drift_total", map[string]string{"interface": lab.Uplink, "action": "reinstall"}); n != 1 {
		t.Errorf("drift counter %v, want 1", n)
	}
	if l := e.layout(); l.Filters != 1 || l.Classes != 1 {
		t.Errorf("after the drift repair up0 holds %+v; want the classifier and the class back", l)
	}
	if got := root(); got != tbf {
		t.Errorf("the operator's tbf changed by the repair: %s, was %s", got, tbf)
	}
}
