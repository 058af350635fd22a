package synwatch

import (
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"

	"github.com/egressguard/egressguard/detect"
)

// Bounds of what a window holds, whatever the packet rate.
const (
	topCapacity   = 64 // Space-Saving entries for ports and for sources
	sampleDstsCap = 8  // reservoir of sample destinations
)

// window accumulates sampled observations, each weighted by the 1-in-N
// sampling rate it was captured under, for one interval.
type window struct {
	synOut, synAckIn, rstOut, closeOut, udpOut, udpIn uint64

	outSampled, outWeight uint64 // SYN+UDP out: sampled packets and their total weight
	dsts                  distinctSet
	ports                 *topK[uint16]
	sources               *topK[netip.Addr]
	synAckTo              *topK[netip.Addr] // SYN-ACKs in by destination
	macs                  map[netip.Addr][6]byte
	sampleDsts            []netip.AddrPort
	rng                   *rand.Rand

	// Ring drop compensation, in packets on the wire: readWeight sums the
	// sampling weight of every frame read from the ring (counted or not),
	// dropWeight the frames the ring had no room for, each weighted by the
	// divisor in effect when it was dropped. Counts scale by
	// (readWeight+dropWeight)/readWeight.
	readWeight, dropWeight uint64
}

func newWindow(seed uint64) *window {
	return &window{
		ports:      newTopK[uint16](topCapacity),
		sources:    newTopK[netip.Addr](topCapacity),
		synAckTo:   newTopK[netip.Addr](topCapacity),
		macs:       make(map[netip.Addr][6]byte, topCapacity),
		sampleDsts: make([]netip.AddrPort, 0, sampleDstsCap),
		rng:        rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)),
	}
}

func (w *window) add(o observation, weight uint64) {
	switch o.kind {
	case kindSynAckIn:
		w.synAckIn += weight
		w.synAckTo.add(o.Dst, weight)
		return
	case kindUDPIn:
		w.udpIn += weight
		return
	case kindRstOut:
		w.rstOut += weight
		return
	case kindCloseOut:
		w.closeOut += weight
		return
	case kindSynOut:
		w.synOut += weight
	case kindUDPOut:
		w.udpOut += weight
	default:
		return
	}
	w.outSampled++
	w.outWeight += weight
	w.dsts.add(o.Dst)
	w.ports.add(o.DstPort, weight)
	if gone, ok := w.sources.add(o.Src, weight); ok {
		delete(w.macs, gone)
	}
	if o.hasSrcMAC {
		w.macs[o.Src] = o.srcMAC
	}
	// Reservoir sampling keeps each outbound destination with equal chance.
	ap := netip.AddrPortFrom(o.Dst, o.DstPort)
	if len(w.sampleDsts) < sampleDstsCap {
		w.sampleDsts = append(w.sampleDsts, ap)
	} else if j := w.rng.Uint64N(w.outSampled); j < sampleDstsCap {
		w.sampleDsts[j] = ap
	}
}

// dropWeight returns the packets that dropped frames stand for: each as the
// average of the frames read meanwhile (readFrames frames standing for
// readWeight packets), or as every packets when none was read.
func dropWeight(dropped, readFrames, readWeight uint64, every uint32) uint64 {
	if dropped == 0 {
		return 0
	}
	if readFrames == 0 {
		return dropped * uint64(every)
	}
	return uint64(math.Round(float64(dropped) * float64(readWeight) / float64(readFrames)))
}

// counts returns the window's estimates with at most topN ports and
// sources, scaled by (readWeight+dropWeight)/readWeight for the frames the
// ring dropped.
func (w *window) counts(topN int) detect.Counts {
	scale := func(v uint64) uint64 { return v }
	if w.dropWeight > 0 && w.readWeight > 0 {
		f := float64(w.readWeight+w.dropWeight) / float64(w.readWeight)
		scale = func(v uint64) uint64 { return uint64(math.Round(float64(v) * f)) }
	}
	c := detect.Counts{
		SynOut:       scale(w.synOut),
		SynAckIn:     scale(w.synAckIn),
		RstOut:       scale(w.rstOut),
		CloseOut:     scale(w.closeOut),
		UDPOut:       scale(w.udpOut),
		UDPIn:        scale(w.udpIn),
		Destinations: uint64(math.Round(estimateDistinct(w.dsts.count(), w.outSampled, w.outWeight))),
		DstPorts:     w.ports.top(topN),
		Sources:      w.sources.top(topN),
		SourceMACs:   map[netip.Addr]net.HardwareAddr{},
		SampleDsts:   slices.Clone(w.sampleDsts),
		SynAckTo:     w.synAckTo.top(topN),
	}
	if w.outSampled == 0 {
		c.Destinations = 0
	}
	for p, v := range c.DstPorts {
		c.DstPorts[p] = scale(v)
	}
	for a, v := range c.SynAckTo {
		c.SynAckTo[a] = scale(v)
	}
	for a, v := range c.Sources {
		c.Sources[a] = scale(v)
		if mac, ok := w.macs[a]; ok {
			c.SourceMACs[a] = net.HardwareAddr(mac[:])
		}
	}
	return c
}

func (w *window) reset() {
	w.synOut, w.synAckIn, w.rstOut, w.closeOut, w.udpOut, w.udpIn = 0, 0, 0, 0, 0, 0
	w.outSampled, w.outWeight = 0, 0
	w.readWeight, w.dropWeight = 0, 0
	w.dsts.reset()
	w.ports.reset()
	w.sources.reset()
	w.synAckTo.reset()
	clear(w.macs)
	w.sampleDsts = w.sampleDsts[:0]
}
