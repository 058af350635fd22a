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

// TestWindowCompensatesDropsByWeight: drops are charged at the divisor
// they were sampled under, so a window read mostly at 1 in 8 that lost
// frames at 1 in 1 grows by the packets lost, not by the frame ratio.
func TestWindowCompensatesDropsByWeight(t *testing.T) {
	w := newWindow(1)
	src := netip.MustParseAddr("10.0.0.1")
	syn := observation{Packet: account.Packet{Src: src, Dst: netip.MustParseAddr("198.18.0.1"), DstPort: 80}, kind: kindSynOut}
	ack := observation{Packet: account.Packet{Src: netip.MustParseAddr("198.18.0.1"), Dst: src, SrcPort: 80}, kind: kindSynAckIn}
	// 500 SYN and 500 SYN-ACK frames read at 1 in 8 (8000 packets), then
	// 500 more of each at 1 in 1, of which the ring kept 300 each and
	// dropped 400: 9000 packets in truth, 4500 SYN and 4500 SYN-ACK.
	for range 500 {
		w.add(syn, 8)
		w.add(ack, 8)
		w.readWeight += 16
	}
	for range 300 {
		w.add(syn, 1)
		w.add(ack, 1)
		w.readWeight += 2
	}
	// The 400 drops happened while frames were read at 1 in 1.
	w.dropWeight += dropWeight(400, 600, 600, 8)
	c := w.counts(DefaultTopN)
	// (8000+600+400)/(8000+600) scales 4300 to 4500 each.
	if c.SynOut != 4500 || c.SynAckIn != 4500 || c.DstPorts[80] != 4500 || c.Sources[src] != 4500 {
		t.Errorf("with drops: %+v, want syn_out=synack_in=4500", countsView(c).brief())
	}
	// The frame ratio passed/(passed-dropped) = 2000/1600 would give 5375.
	w.reset()
	for range 10 {
		w.add(syn, 4)
		w.readWeight += 4
	}
	if c := w.counts(DefaultTopN); c.SynOut != 40 {
		t.Errorf("without drops: syn_out %d, want 40", c.SynOut)
	}
}

func TestDropWeight(t *testing.T) {
	for _, tc := range []struct {
		name                            string
		dropped, readFrames, readWeight uint64
		every                           uint32
		want                            uint64
	}{
		{"no drops", 0, 100, 800, 8, 0},
		{"at the divisor read", 50, 100, 800, 8, 400},
		// 90 control frames at 1 in 4, 10 data frames at 1 in 4×DataEvery.
		{"data frames weigh more", 100, 100, 90*4 + 10*4*DataEvery, 4, 100 * (90*4 + 10*4*DataEvery) / 100},
		{"none read: the current divisor", 7, 0, 0, 32, 7 * 32},
	} {
		if got := dropWeight(tc.dropped, tc.readFrames, tc.readWeight, tc.every); got != tc.want {
			t.Errorf("%s: dropWeight(%d, %d, %d, %d) = %d, want %d", tc.name, tc.dropped, tc.readFrames, tc.readWeight, tc.every, got, tc.want)
		}
	}
}

func TestWindowScalesAndBounds(t *testing.T) {
	w := newWindow(1)
	src := netip.MustParseAddr("10.0.0.1")
	for i := range 1000 {
		w.add(observation{Packet: account.Packet{Src: src, Dst: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), DstPort: 443}, kind: kindSynOut, hasSrcMAC: true, srcMAC: [6]byte{2, 0, 0, 0, 0, 1}}, 16)
	}
	w.add(observation{kind: kindSynAckIn}, 16)
	w.readWeight = 1001 * 16
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
