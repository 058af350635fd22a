package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/internal/lab"
	"github.com/egressguard/egressguard/internal/labagent"
	"github.com/egressguard/egressguard/shaper"
)

// TestObserveFloodChangesNothing: in observe mode a flood gets verdict
// flood and a refusal counted with reason observe, and the kernel's qdiscs
// are exactly as before.
func TestObserveFloodChangesNothing(t *testing.T) {
	e := newEnv(t, 0, func(c *config.Config) { c.Mode = config.ModeObserve })
	before, err := e.lab.Qdiscs(e.ctx, e.lab.Node, lab.Uplink)
	if err != nil {
		t.Fatal(err)
	}
	e.startAgent()
	p := e.poll(250 * time.Millisecond)
	start := time.Now()
	fl := e.flood(e.lab.Node, 6*time.Second)
	v := p.waitFor(t, "verdict flood", start, 6*time.Second, func(s sample) bool { return s.verdict == "flood" })
	t.Logf("observe: verdict flood %.2f s after the flood started", v.at.Sub(start).Seconds())
	if err := fl.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Stop() {
		if s.mitigated {
			t.Errorf("observe mode: a mitigation at %s", s.at.Format(time.StampMilli))
		}
	}
	if n := e.metricValue("egressguard_actions_refused_total", map[string]string{"reason": "observe"}); !(n >= 1) {
		t.Errorf("egressguard_actions_refused_total{reason=observe} = %v: want at least 1", n)
	}
	after, _ := e.lab.Qdiscs(e.ctx, e.lab.Node, lab.Uplink)
	if before != after {
		t.Errorf("observe mode changed the qdiscs:\nbefore %s\nafter  %s", before, after)
	}
}

// TestSighupReload: SIGHUP with a bad config keeps the old one and logs
// why, whether the fault is the throttle's or the per-key detection's;
// with a good one (which also lists a port's owned addresses) the mode
// changes.
func TestSighupReload(t *testing.T) {
	e := newEnv(t, 0, func(c *config.Config) { c.Mode = config.ModeObserve })
	e.startAgent()
	good := labagent.Config(e.dir)
	good.Detect.MaxSourcesTracked = 512
	good.Detect.Owned = map[string][]config.Prefix{"vnet9": {config.Prefix(netip.MustParsePrefix("192.0.2.10/32"))}}
	bad := good
	bad.Throttle.Ports = []config.Port{22} // throttling SSH is nonsense
	badTick := good
	badTick.Detect.Tick = config.Duration(5 * time.Millisecond) // finer than the ring hands over frames
	const refused = "config reload refused; keeping the old config"
	seen := map[string]int{}
	for _, step := range []struct {
		name string
		cfg  config.Config
		msg  string
		mode string
	}{
		{"bad", bad, refused, config.ModeObserve},
		{"bad detect.tick", badTick, refused, config.ModeObserve},
		{"good", good, "config reloaded", config.ModeEnforce},
	} {
		if err := labagent.WriteConfig(e.agent.ConfigPath, step.cfg); err != nil {
			t.Fatal(err)
		}
		if err := e.agent.Reload(); err != nil {
			t.Fatal(err)
		}
		want := seen[step.msg] + 1
		deadline := time.Now().Add(5 * time.Second)
		for len(e.agent.LogEntries(step.msg)) < want && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		logs := e.agent.LogEntries(step.msg)
		if len(logs) != want {
			t.Fatalf("%s config: %d %q log lines, want %d", step.name, len(logs), step.msg, want)
		}
		seen[step.msg] = want
		if mode := e.status().Mode; mode != step.mode {
			t.Errorf("%s config: mode %s, want %s", step.name, mode, step.mode)
		}
		t.Logf("%s config: %v", step.name, logs[want-1])
	}
	if logs := e.agent.LogEntries(refused); len(logs) == 2 && !strings.Contains(fmt.Sprint(logs[1]["err"]), "detect.tick 5ms") {
		t.Errorf("refused detect.tick reload logged %v, want the field and value named", logs[1])
	}
}

// TestCLIThroughSocketAndAdoption: throttle, status and unthrottle go
// through the running agent's socket; a throttle the CLI made with no agent
// running is adopted by the agent that starts next.
func TestCLIThroughSocketAndAdoption(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.startAgent()
	out := e.cli(0, "throttle", "--interface", lab.Uplink, "--rate", "2mbit", "--ports", "443", "--ttl", "5m")
	if !strings.Contains(out, "through the agent") {
		t.Errorf("throttle output %q: want through the agent", out)
	}
	js := e.cli(0, "status", "--json")
	for _, w := range []string{`"agent": true`, `"reason": "manual"`, `"rate_bps": 2000000`, `"installed": true`, `"verdict"`} {
		if !strings.Contains(js, w) {
			t.Errorf("status --json lacks %s:\n%s", w, js)
		}
	}
	cs, err := e.lab.Classes(e.ctx, e.lab.Node, shaper.ShapingDevice(lab.Uplink))
	if err != nil || cs["e9:10"].ID == "" {
		t.Fatalf("no throttled class after throttle: %v %v", cs, err)
	}
	if tcOut, _ := e.lab.Exec(e.ctx, e.lab.Node, "tc", "class", "show", "dev", shaper.ShapingDevice(lab.Uplink), "classid", "e9:10"); !strings.Contains(tcOut, "rate 2Mbit") {
		t.Errorf("throttled class %q: want rate 2Mbit", tcOut)
	}
	if out := e.cli(0, "unthrottle", "--interface", lab.Uplink); !strings.Contains(out, "through the agent") {
		t.Errorf("unthrottle output %q", out)
	}
	if l := e.layout(); l.Classes != 0 {
		t.Errorf("after unthrottle up0 holds %+v", l)
	}
	if err := e.agent.Stop(); err != nil {
		t.Fatal(err)
	}

	out = e.cli(0, "throttle", "--interface", lab.Uplink, "--ttl", "5m")
	if strings.Contains(out, "through the agent") {
		t.Errorf("with no agent, throttle went %q", out)
	}
	e.startAgent()
	st := e.status()
	if len(st.Mitigations) != 1 || st.Mitigations[0].Reason != "manual" || !st.Mitigations[0].Installed {
		t.Fatalf("adopted mitigations %+v: want one manual, installed", st.Mitigations)
	}
	// The gauge is refreshed by the first interval after start (Reconcile
	// does not set it; reported), so give it a few intervals.
	active := func() float64 {
		return e.metricValue("egressguard_mitigations_active", map[string]string{"interface": lab.Uplink, "reason": "manual"})
	}
	for deadline := time.Now().Add(3 * time.Second); active() != 1 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if n := active(); n != 1 {
		t.Errorf("egressguard_mitigations_active{manual} = %v after adoption", n)
	}
	e.cli(0, "unthrottle", "--all")
	if l := e.layout(); l.Classes != 0 || !strings.HasPrefix(l.Root, "noqueue") {
		t.Errorf("after unthrottle --all up0 holds %+v", l)
	}
}
