package e2e

import (
	"testing"
	"time"

	"github.com/egressguard/egressguard/internal/lab"
)

const (
	floodLength   = 60 * time.Second
	throttleLimit = 4 * time.Second
	rateBps       = 1_000_000 // labagent.Config's throttle.rate
	exitAfter     = 10        // labagent.Config's detect.exit_after, 1 s intervals
	sshPort       = 22
)

// TestNodeFloodOneMitigation floods from the node itself for 60 s at full
// speed: the agent throttles within 4 s, holds the throttled ports to 1.2×
// the configured rate (tc's Sent bytes as the oracle), never releases while
// the flood lasts although the throttle hides most of it from the capture
// (offered load), releases within exit_after+5 s after it ends, and takes
// exactly one throttle action. An SSH-port iperf3 stream paced at 1 Gbit/s
// keeps at least 0.9 of its rate during the flood.
func TestNodeFloodOneMitigation(t *testing.T) {
	e := newEnv(t, 0, nil)
	if _, err := e.lab.IperfServer(e.ctx, sshPort); err != nil {
		t.Fatal(err)
	}
	e.startAgent()
	ssh := lab.IperfOptions{Port: sshPort, Rate: "1G", Duration: 4 * time.Second}
	before, err := e.lab.Iperf(e.ctx, e.lab.Node, ssh)
	if err != nil {
		t.Fatal(err)
	}

	p := e.poll(250 * time.Millisecond)
	start := time.Now()
	fl := e.flood(e.lab.Node, floodLength)
	thr := p.waitFor(t, "throttle", start, throttleLimit+2*time.Second, func(s sample) bool { return s.mitigated })
	toThrottle := thr.at.Sub(start)
	t.Logf("throttled %.2f s after the flood started: scope %s sources %v", toThrottle.Seconds(), thr.mit.Scope, thr.mit.Sources)
	if toThrottle > throttleLimit {
		t.Errorf("time to throttle %.2f s: want at most %s", toThrottle.Seconds(), throttleLimit)
	}

	time.Sleep(time.Second)
	sent0, at0 := e.throttledSent()
	during, err := e.lab.Iperf(e.ctx, e.lab.Node, ssh)
	if err != nil {
		t.Fatal(err)
	}
	ratio := during.ReceivedBps / before.ReceivedBps
	t.Logf("SSH-port stream paced at 1G: %.0f Mbit/s before, %.0f during (ratio %.3f, %.3f of the pace)",
		before.ReceivedBps/1e6, during.ReceivedBps/1e6, ratio, during.ReceivedBps/1e9)
	if ratio < 0.9 {
		t.Errorf("SSH-port stream kept %.3f of its rate during the flood: want at least 0.9", ratio)
	}

	// Measure the throttled class until just before the flood ends.
	time.Sleep(time.Until(start.Add(floodLength - 2*time.Second)))
	sent1, at1 := e.throttledSent()
	egress := float64(sent1-sent0) * 8 / at1.Sub(at0).Seconds()
	t.Logf("throttled class sent %.3f Mbit/s over %.1f s (rate %.1f Mbit/s, %.2f×)", egress/1e6, at1.Sub(at0).Seconds(), rateBps/1e6, egress/rateBps)
	if egress > 1.2*rateBps {
		t.Errorf("flood egress %.3f Mbit/s: want at most 1.2 × %.1f", egress/1e6, rateBps/1e6)
	}

	if err := fl.Wait(e.ctx); err != nil {
		t.Fatalf("synflood: %v\n%s", err, fl.Output())
	}
	end := time.Now()
	t.Logf("synflood: %s", fl.Output())
	rel := p.waitFor(t, "release", end, (exitAfter+10)*time.Second, func(s sample) bool { return !s.mitigated })
	release := rel.at.Sub(end)
	samples := p.Stop()
	t.Logf("released %.2f s after the flood ended (exit_after %d s)", release.Seconds(), exitAfter)
	if release > (exitAfter+5)*time.Second {
		t.Errorf("release %.2f s after the flood: want at most exit_after+5 s", release.Seconds())
	}
	polls, flood := 0, 0
	for _, s := range samples {
		if s.at.Before(thr.at) || !s.at.Before(end) {
			continue
		}
		polls++
		if s.err != nil {
			t.Errorf("status at %s: %v", s.at.Sub(start), s.err)
			continue
		}
		if !s.mitigated {
			t.Errorf("no mitigation at %.2f s while the flood lasted", s.at.Sub(start).Seconds())
		}
		if s.verdict == "flood" {
			flood++
		}
	}
	t.Logf("%d status polls while throttled, all mitigated; verdict flood in %d", polls, flood)
	if n := e.metricValue("egressguard_actions_total", map[string]string{"action": "throttle"}); n != 1 {
		t.Errorf("egressguard_actions_total{action=throttle} = %v: want exactly 1", n)
	}
	if n := len(e.agent.LogEntries("mitigation throttle")); n != 1 {
		t.Errorf("%d \"mitigation throttle\" log lines: want 1", n)
	}
	if n := e.metricValue("egressguard_actions_total", map[string]string{"action": "release"}); n != 1 {
		t.Errorf("egressguard_actions_total{action=release} = %v: want 1", n)
	}
}
