package e2e

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/internal/lab"
)

// TestAsymmetricRoutingCrawler: the node has two watched uplinks; its SYNs
// leave by up0 and the SYN-ACKs come back on up1. A healthy crawler
// (every handshake completes) is never judged a flood nor throttled: the
// replies are matched node-wide, so up0's SYN-ACK ratio is its real one.
func TestAsymmetricRoutingCrawler(t *testing.T) {
	e := newEnv(t, 0, func(c *config.Config) { c.Interfaces = []string{lab.Uplink, lab.ReturnUplink} })
	if err := e.lab.AddReturnUplink(); err != nil {
		t.Fatal(err)
	}
	e.sink("80")
	e.startAgent()
	p := e.poll(250 * time.Millisecond)
	const secs = 10
	crawl, err := e.lab.Start(e.lab.Node, e.tools.Crawler, "-ports", "80", "-duration", (secs * time.Second).String())
	if err != nil {
		t.Fatal(err)
	}
	if err := crawl.Wait(e.ctx); err != nil {
		t.Fatalf("crawler: %v\n%s", err, crawl.Output())
	}
	time.Sleep(2 * time.Second)
	p.Stop()
	st := e.status()
	var maxSyn, maxAck float64
	for _, s := range p.snapshot() {
		if s.err != nil {
			t.Fatal(s.err)
		}
		maxSyn = math.Max(maxSyn, s.iface.SynOutPps)
		maxAck = math.Max(maxAck, s.iface.SynAckInPps)
		if s.verdict == "flood" || s.mitigated {
			t.Errorf("at %s: up0 verdict %s, mitigated %v", s.at.Format(time.StampMilli), s.verdict, s.mitigated)
		}
	}
	t.Logf("crawler: %s; up0 peak syn_out %.0f/s, peak synack_in credited %.0f/s; interfaces %d",
		strings.TrimSpace(crawl.Stdout()), maxSyn, maxAck, len(st.Interfaces))
	if maxSyn < 2000 {
		t.Errorf("crawler peaked at %.0f SYN/s: below syn_rate_min, the test proves nothing", maxSyn)
	}
	if n := e.metricValue("egressguard_actions_total", map[string]string{"action": "throttle"}); n > 0 {
		t.Errorf("egressguard_actions_total{action=throttle} = %v: want none", n)
	}
}
