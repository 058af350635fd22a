package synwatch

import (
	"cmp"
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"slices"
)

// hllPrecision gives 2^12 one-byte registers: 4 KiB and a relative standard
// error of 1.04/sqrt(4096) ≈ 1.6%.
const hllPrecision = 12

// hyperLogLog estimates the number of distinct addresses added to it.
type hyperLogLog struct {
	reg [1 << hllPrecision]uint8
}

func (h *hyperLogLog) add(a netip.Addr) {
	x := hashAddr(a)
	i := x >> (64 - hllPrecision)
	rho := uint8(bits.LeadingZeros64(x<<hllPrecision|1<<(hllPrecision-1))) + 1
	if rho > h.reg[i] {
		h.reg[i] = rho
	}
}

func (h *hyperLogLog) estimate() float64 {
	const m = float64(1 << hllPrecision)
	var sum float64
	zeros := 0
	for _, r := range h.reg {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		return m * math.Log(m/float64(zeros)) // linear counting for small sets
	}
	return e
}

func (h *hyperLogLog) reset() { clear(h.reg[:]) }

// hashAddr mixes the 16-byte form of a with murmur3's finaliser.
func hashAddr(a netip.Addr) uint64 {
	b := a.As16()
	return fmix64(binary.LittleEndian.Uint64(b[:8]) ^ fmix64(binary.LittleEndian.Uint64(b[8:])+0x9e3779b97f4a7c15))
}

func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb3fe1a85ec53
	k ^= k >> 33
	return k
}

// topK keeps approximate heavy hitters in at most capacity entries with the
// Space-Saving algorithm: a key's count is overestimated by at most the
// smallest count held, and any key with more than total/capacity is held.
type topK[K comparable] struct {
	counts   map[K]uint64
	capacity int
}

func newTopK[K comparable](capacity int) *topK[K] {
	return &topK[K]{counts: make(map[K]uint64, capacity), capacity: capacity}
}

// add counts w for k and reports the key it evicted to make room, if any.
func (t *topK[K]) add(k K, w uint64) (evicted K, ok bool) {
	if c, held := t.counts[k]; held {
		t.counts[k] = c + w
		return evicted, false
	}
	if len(t.counts) < t.capacity {
		t.counts[k] = w
		return evicted, false
	}
	var minC uint64 = math.MaxUint64
	for key, c := range t.counts {
		if c < minC {
			evicted, minC = key, c
		}
	}
	delete(t.counts, evicted)
	t.counts[k] = minC + w
	return evicted, true
}

// top returns the n largest entries.
func (t *topK[K]) top(n int) map[K]uint64 {
	type kv struct {
		k K
		c uint64
	}
	all := make([]kv, 0, len(t.counts))
	for k, c := range t.counts {
		all = append(all, kv{k, c})
	}
	slices.SortFunc(all, func(a, b kv) int { return cmp.Compare(b.c, a.c) })
	out := make(map[K]uint64, min(n, len(all)))
	for _, e := range all[:min(n, len(all))] {
		out[e.k] = e.c
	}
	return out
}

func (t *topK[K]) reset() { clear(t.counts) }

// estimateDistinct scales the number of distinct destinations seen among
// sampled packets up to all packets, given that sampled packets were kept out
// of weight offered ones. It assumes packets pick their destinations at
// random from a set of S addresses (a scan, a random-destination flood, a
// crawler; or a few hosts when seen is small): the sample then holds
// S(1-e^(-sampled/S)) distinct ones, solved for S by bisection, and all
// packets hold S(1-e^(-weight/S)). Without sampling it returns seen.
func estimateDistinct(seen float64, sampled, weight uint64) float64 {
	if sampled == 0 || weight <= sampled || seen <= 0 {
		return seen
	}
	k, n := float64(sampled), float64(weight)
	occupied := func(space, draws float64) float64 { return space * -math.Expm1(-draws/space) }
	if seen >= occupied(n*n, k) {
		return n // no repeat among the samples: as many destinations as packets
	}
	lo, hi := seen, n*n
	for range 100 {
		mid := math.Sqrt(lo * hi)
		if occupied(mid, k) < seen {
			lo = mid
		} else {
			hi = mid
		}
	}
	return min(max(occupied(math.Sqrt(lo*hi), n), seen), n)
}

// distinctSetCap bounds the exact set of sampled destinations (≈ 3 MiB);
// past it the HyperLogLog's estimate is used.
const distinctSetCap = 1 << 16

// distinctSet counts distinct addresses exactly up to distinctSetCap and by
// HyperLogLog (±1.6%) beyond: the fan-out estimator divides small
// differences, so exact counts matter at the usual sampled rates.
type distinctSet struct {
	exact map[netip.Addr]struct{}
	hll   hyperLogLog
}

func (d *distinctSet) add(a netip.Addr) {
	d.hll.add(a)
	if d.exact == nil {
		d.exact = make(map[netip.Addr]struct{}, 1024)
	}
	if len(d.exact) < distinctSetCap {
		d.exact[a] = struct{}{}
	}
}

func (d *distinctSet) count() float64 {
	if len(d.exact) < distinctSetCap {
		return float64(len(d.exact))
	}
	return d.hll.estimate()
}

func (d *distinctSet) reset() {
	clear(d.exact)
	d.hll.reset()
}
