package synwatch

import (
	"math"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	eglab "github.com/egressguard/egressguard/internal/lab"
)

// within reports whether got is within frac of want.
func within(got, want uint64, frac float64) bool {
	return math.Abs(float64(got)-float64(want)) <= frac*float64(want)
}

// sampledTolerance is the relative error to allow an estimate of n packets
// counted 1 in every (on average) at random: at least floor, and four standard
// deviations of the binomial estimate, sqrt(every/n) relative (sqrt(2) more
// when two such estimates are compared with each other, as twins).
func sampledTolerance(floor float64, every uint32, n uint64, twins bool) float64 {
	if n == 0 {
		return floor
	}
	v := float64(every) / float64(n)
	if twins {
		v *= 2
	}
	return math.Max(floor, 4*math.Sqrt(v))
}

func TestFloodsAgainstTruth(t *testing.T) {
	requireRoot(t)
	if raceDetector {
		t.Skip("estimates under a full-speed flood measure the race detector's slowdown, not the capture: run without -race")
	}
	for _, tc := range []struct {
		name  string
		space float64 // destination addresses the flood picks from
		args  []string
		truth string
		got   func(c countsView) uint64
	}{
		{"syn4", 1 << 17, []string{"-duration", "2s"}, "syn", func(c countsView) uint64 { return c.SynOut }},
		{"syn6", 1 << 80, []string{"-6", "-duration", "2s"}, "syn", func(c countsView) uint64 { return c.SynOut }},
		{"syn4-spoofed", 1 << 17, []string{"-spoof", "10.77.0.0/16", "-duration", "2s"}, "syn", func(c countsView) uint64 { return c.SynOut }},
		// Real uplinks carry option headers: the kernel filter and the
		// decoder must find the SYN behind them (before the header walk, an
		// IPv6 Destination Options flood read syn_out 0).
		{"syn6-dstopts", 1 << 80, []string{"-6", "-ipopts", "-duration", "2s"}, "syn", func(c countsView) uint64 { return c.SynOut }},
		{"syn4-ipopts", 1 << 17, []string{"-ipopts", "-duration", "2s"}, "syn", func(c countsView) uint64 { return c.SynOut }},
		{"udp443", 1 << 17, []string{"-udp", "-ports", "443", "-duration", "2s"}, eglab.TruthUDP, func(c countsView) uint64 { return c.UDPOut }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			w := l.watch(t, Options{})
			before := l.truth(t, tc.truth)
			w.Collect()
			l.run(t, l.node, "synflood", tc.args...)
			settle()
			c := countsView(w.Collect())
			truth := l.truth(t, tc.truth) - before
			t.Logf("truth %d, estimate %d, counts %+v, stats %+v", truth, tc.got(c), c.brief(), w.Stats())
			if truth < 10000 {
				t.Fatalf("flood too slow to test: %d packets", truth)
			}
			if !within(tc.got(c), truth, 0.10) {
				t.Errorf("estimate %d vs truth %d: off by more than 10%%", tc.got(c), truth)
			}
			if c.SynAckIn > c.SynOut/100 {
				t.Errorf("SynAckIn %d for a flood of %d SYNs", c.SynAckIn, c.SynOut)
			}
			// Random picks from a space of S hit S(1-e^(-n/S)) distinct addresses.
			wantDsts := uint64(-tc.space * math.Expm1(-float64(truth)/tc.space))
			if !within(c.Destinations, wantDsts, 0.15) {
				t.Errorf("Destinations %d, want %d ±15%%", c.Destinations, wantDsts)
			}
			if len(c.SampleDsts) == 0 || len(c.DstPorts) == 0 || len(c.Sources) == 0 {
				t.Errorf("missing evidence: %+v", c.brief())
			}
			if tc.name == "syn4" && len(c.SourceMACs) == 0 {
				t.Errorf("no source MAC for %v", c.Sources)
			}
			if len(w.Recent()) == 0 {
				t.Error("Recent: no packets kept")
			}
		})
	}
}

func TestCrawlerHandshakesSucceed(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "v4"
		args := []string{"-duration", "2s", "-workers", "32"}
		if v6 {
			name, args = "v6", append(args, "-6")
		}
		t.Run(name, func(t *testing.T) {
			l := newLab(t)
			l.startSink(t)
			w := l.watch(t, Options{})
			before, beforeAck := l.truth(t, "syn"), l.truth(t, "synack")
			w.Collect()
			res := l.run(t, l.node, "crawler", args...)
			settle()
			c := countsView(w.Collect())
			truth, truthAck := l.truth(t, "syn")-before, l.truth(t, "synack")-beforeAck
			t.Logf("truth syn %d synack %d, counts %+v, stats %+v", truth, truthAck, c.brief(), w.Stats())
			if res["connects"] < 1000 {
				t.Fatalf("crawler too slow to test: %v", res)
			}
			// Under load the watcher samples, with a divisor that adapts
			// during the run: allow the sampling error of the average
			// divisor, the handshake packets per frame it sampled.
			every := uint32(1)
			if st := w.Stats(); st.Sampled > 0 {
				every = uint32(max(1, (truth+truthAck)/st.Sampled))
			}
			tol, tol2 := sampledTolerance(0.10, every, truth, false), sampledTolerance(0.10, every, truth, true)
			if !within(c.SynOut, truth, tol) || !within(c.SynAckIn, truthAck, tol) {
				t.Errorf("SynOut %d / SynAckIn %d vs truth %d / %d: off by more than %.0f%% (1 in %d sampled on average)", c.SynOut, c.SynAckIn, truth, truthAck, 100*tol, every)
			}
			if !within(c.SynAckIn, c.SynOut, tol2) {
				t.Errorf("SynAckIn %d vs SynOut %d: a crawler's handshakes succeed (allowed %.0f%%, 1 in %d sampled on average)", c.SynAckIn, c.SynOut, 100*tol2, every)
			}
			if c.RstOut > c.SynOut/100 {
				t.Errorf("RstOut %d: the crawler closes with FIN", c.RstOut)
			}
		})
	}
}

// TestFilterInKernel sends every frame of the classification table once,
// outgoing frames on the node's up0 and incoming ones from the internet side
// (tags in-band for the VLAN cases), and checks that exactly the counted
// kinds pass the kernel filter.
func TestFilterInKernel(t *testing.T) {
	l := newLab(t)
	w := l.watch(t, Options{})
	inetFD, err := os.Open("/run/netns/" + l.inet)
	if err != nil {
		t.Fatal(err)
	}
	defer inetFD.Close()
	send := func(nsFD int, ifname string, frame []byte) {
		t.Helper()
		_, err := inNetNS(nsFD, func() (struct{}, error) {
			ifc, err := net.InterfaceByName(ifname)
			if err != nil {
				return struct{}{}, err
			}
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return struct{}{}, err
			}
			defer unix.Close(fd)
			return struct{}{}, unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6})
		})
		if err != nil {
			t.Fatalf("send on %s: %v", ifname, err)
		}
	}
	want := map[kind]uint64{}
	var passing, data uint64
	w.Collect()
	for _, tc := range frameCases {
		if tc.out {
			send(l.nodeFD, "up0", tc.f.serialize(t))
		} else {
			send(int(inetFD.Fd()), "wan0", tc.f.serialize(t))
		}
		want[tc.want]++
		switch tc.pass {
		case passAlways:
			passing++
		case passData:
			data++
		}
	}
	settle()
	c := w.Collect()
	got := map[kind]uint64{kindSynOut: c.SynOut, kindSynAckIn: c.SynAckIn, kindRstOut: c.RstOut, kindUDPOut: c.UDPOut, kindUDPIn: c.UDPIn}
	for k, n := range got {
		if n != want[k] {
			t.Errorf("kind %d: counted %d, want %d", k, n, want[k])
		}
	}
	// The data frames pass 1 in DataEvery, at random.
	if s := w.Stats(); s.Passed < passing || s.Passed > passing+data || s.Sampled != s.Passed {
		t.Errorf("stats %+v: want %d to %d frames through the filter, all decoded", s, passing, passing+data)
	}
}
