package synwatch

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/egressguard/egressguard/detect/account"
)

func TestEstimateDistinct(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name        string
		space, pkts int // destinations drawn uniformly from space, pkts packets
		every       int // 1-in-every sampling
		tolerance   float64
	}{
		{"no sampling", 1000, 5000, 1, 0},
		{"random flood over /15", 1 << 17, 300000, 32, 0.10},
		{"all distinct", 1 << 30, 200000, 16, 0.10},
		{"few heavy hosts", 20, 100000, 64, 0.10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			truth := map[int]bool{}
			sampled := map[int]bool{}
			var k uint64
			for range tc.pkts {
				d := rng.IntN(tc.space)
				truth[d] = true
				if rng.IntN(tc.every) == 0 {
					sampled[d] = true
					k++
				}
			}
			got := estimateDistinct(float64(len(sampled)), k, k*uint64(tc.every))
			if want := float64(len(truth)); math.Abs(got-want) > tc.tolerance*want {
				t.Errorf("estimate %.0f, truth %.0f (±%.0f%%)", got, want, 100*tc.tolerance)
			}
		})
	}
}

func TestHyperLogLogError(t *testing.T) {
	var h hyperLogLog
	for _, n := range []int{100, 10000, 200000} {
		h.reset()
		for i := range n {
			h.add(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		}
		if e := h.estimate(); math.Abs(e-float64(n)) > 0.05*float64(n) {
			t.Errorf("n=%d: estimate %.0f beyond 5%% (3σ)", n, e)
		}
	}
}

func TestTopKHoldsHeavyHitters(t *testing.T) {
	tk := newTopK[uint16](8)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		if rng.IntN(2) == 0 {
			tk.add(443, 1) // half the traffic
		} else {
			tk.add(uint16(1000+rng.IntN(5000)), 1)
		}
	}
	top := tk.top(1)
	if c, ok := top[443]; !ok || c < 50000*9/10 {
		t.Errorf("top = %v, want 443 with ~50000", top)
	}
	if len(tk.counts) > 8 {
		t.Errorf("holds %d entries, capacity 8", len(tk.counts))
	}
}

func TestWindowScalesAndBounds(t *testing.T) {
	w := newWindow(1)
	src := netip.MustParseAddr("10.0.0.1")
	for i := range 1000 {
		w.add(observation{Packet: account.Packet{Src: src, Dst: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), DstPort: 443}, kind: kindSynOut, hasSrcMAC: true, srcMAC: [6]byte{2, 0, 0, 0, 0, 1}}, 16)
	}
	w.add(observation{kind: kindSynAckIn}, 16)
	w.kernelPassed, w.kernelDropped = 1001, 0
	c := w.counts(DefaultTopN)
	if c.SynOut != 16000 || c.SynAckIn != 16 || c.DstPorts[443] != 16000 || c.Sources[src] != 16000 {
		t.Errorf("counts %+v", countsView(c).brief())
	}
	if c.SourceMACs[src].String() != "02:00:00:00:00:01" || len(c.SampleDsts) != sampleDstsCap {
		t.Errorf("evidence %+v", countsView(c).brief())
	}
	w.reset()
	if c := w.counts(DefaultTopN); c.SynOut != 0 || c.Destinations != 0 || len(c.Sources) != 0 {
		t.Errorf("after reset %+v", countsView(c).brief())
	}
}
