package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect/attrib"
)

// capBits maps the capability names a unit may grant to their bit
// (linux/capability.h).
var capBits = map[string]uint{
	"CAP_DAC_READ_SEARCH": 2, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_PTRACE": 19,
}

// TestPackagedPrivileges runs the agent with exactly the unit's capability
// set and under its system call filter (as every e2e test does) and checks
// the process holds that set and nothing more, in seccomp filter mode, then floods from a root process on the node: the flood is
// throttled and the attribution names the flooding process by pid and exe.
func TestPackagedPrivileges(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.startAgent()
	var want uint64
	for _, c := range e.agent.Capabilities {
		bit, ok := capBits[c]
		if !ok {
			t.Fatalf("unit grants %s: unknown to this test", c)
		}
		want |= 1 << bit
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.agent.Proc.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]uint64{"Seccomp": 2, "NoNewPrivs": 1} {
		if got := statusField(t, string(status), field, 10); got != want {
			t.Errorf("agent %s %d, want %d (the unit's SystemCallFilter and NoNewPrivileges)", field, got, want)
		}
	}
	for _, field := range []string{"CapEff", "CapPrm", "CapBnd"} {
		got := statusField(t, string(status), field, 16)
		t.Logf("agent %s %016x (unit: %v)", field, got, e.agent.Capabilities)
		if got != want {
			t.Errorf("agent %s %016x, want exactly the unit's %016x", field, got, want)
		}
	}

	p := e.poll(250 * time.Millisecond)
	start := time.Now()
	fl := e.flood(e.lab.Node, 20*time.Second)
	defer fl.Kill()
	p.waitFor(t, "throttle", start, 10*time.Second, func(s sample) bool { return s.mitigated })
	var at struct {
		Processes []attrib.Process `json:"processes"`
	}
	s := p.waitFor(t, "attribution", start, 10*time.Second, func(s sample) bool { return s.iface.Attribution != nil })
	p.Stop()
	b, _ := json.Marshal(s.iface.Attribution)
	if err := json.Unmarshal(b, &at); err != nil {
		t.Fatal(err)
	}
	t.Logf("attribution: %s", b)
	found := false
	for _, pr := range at.Processes {
		if pr.PID == fl.Pid() && filepath.Base(pr.Exe) == filepath.Base(e.tools.Synflood) {
			found = true
		}
	}
	if !found {
		t.Errorf("attribution names no process %d (%s): %+v", fl.Pid(), e.tools.Synflood, at.Processes)
	}
}

// statusField reads a number of /proc/PID/status in base.
func statusField(t *testing.T, status, field string, base int) uint64 {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), base, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in the agent's status", field)
	return 0
}
