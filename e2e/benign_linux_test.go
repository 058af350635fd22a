package e2e

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/internal/lab"
)

// TestBenignNeverThrottled runs a large upload to 443 and a crawler whose
// handshakes succeed (scripts/crawler against scripts/sink in inet) at the
// same time: the verdict is never flood and nothing is throttled.
func TestBenignNeverThrottled(t *testing.T) {
	e := newEnv(t, 0, nil)
	if _, err := e.lab.IperfServer(e.ctx, 443); err != nil {
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
	up, err := e.lab.Iperf(e.ctx, e.lab.Node, lab.IperfOptions{Port: 443, Duration: secs * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := crawl.Wait(e.ctx); err != nil {
		t.Fatalf("crawler: %v\n%s", err, crawl.Output())
	}
	time.Sleep(2 * time.Second) // the last intervals reach the detector
	samples := p.Stop()
	var maxSyn, maxTx float64
	verdicts := map[string]int{}
	for _, s := range samples {
		if s.err != nil {
			t.Fatal(s.err)
		}
		verdicts[s.verdict]++
		maxSyn = math.Max(maxSyn, s.iface.SynOutPps)
		maxTx = math.Max(maxTx, s.iface.TxBps)
		if s.verdict == "flood" || s.mitigated {
			t.Errorf("at %s: verdict %s, mitigated %v", s.at.Format(time.StampMilli), s.verdict, s.mitigated)
		}
	}
	t.Logf("upload to 443: %.0f Mbit/s; crawler: %s; peak syn_out %.0f/s, peak tx %.0f Mbit/s; verdicts %v",
		up.ReceivedBps/1e6, strings.TrimSpace(crawl.Stdout()), maxSyn, maxTx/1e6, verdicts)
	if maxSyn < 2000 {
		t.Errorf("crawler peaked at %.0f SYN/s: below syn_rate_min, the test proves nothing", maxSyn)
	}
	if n := e.metricValue("egressguard_actions_total", map[string]string{"action": "throttle"}); n > 0 {
		t.Errorf("egressguard_actions_total{action=throttle} = %v: want none", n)
	}
	if l := e.layout(); l.Classes != 0 {
		t.Errorf("up0 carries %+v: want no layout", l)
	}
}
