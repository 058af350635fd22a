package account

import (
	"cmp"
	"slices"
)

// topPortsCap is how many destinations one key remembers.
const topPortsCap = 8

// topPorts keeps a key's busiest outbound destinations with Space-Saving
// (Metwally et al., 2005): a newcomer replaces the smallest entry and
// inherits its count as its error, so a destination truly among the top few
// is never missed and Count-Err is a guaranteed lower bound. Counts, errors
// and the per-protocol totals decay by 1/8 per tick, so the list follows
// what the key does now rather than what it did an hour ago.
type topPorts struct {
	e     [topPortsCap]PortCount
	n     int
	total [len(protoNames)]uint64
}

func (t *topPorts) add(proto Proto, port uint16, w uint64) {
	t.total[proto] += w
	for i := range t.n {
		if t.e[i].Proto == proto && t.e[i].Port == port {
			t.e[i].Count += w
			return
		}
	}
	if t.n < topPortsCap {
		t.e[t.n] = PortCount{Proto: proto, Port: port, Count: w}
		t.n++
		return
	}
	m := 0
	for i := 1; i < t.n; i++ {
		if t.e[i].Count < t.e[m].Count {
			m = i
		}
	}
	c := t.e[m].Count
	t.e[m] = PortCount{Proto: proto, Port: port, Count: c + w, Err: c}
}

func (t *topPorts) decay() {
	for i := range t.n {
		t.e[i].Count -= t.e[i].Count >> 3
		t.e[i].Err -= t.e[i].Err >> 3
	}
	for i := range t.total {
		t.total[i] -= t.total[i] >> 3
	}
}

// sorted appends the entries to dst, most packets first, each with its
// protocol's decayed total.
func (t *topPorts) sorted(dst []PortCount) []PortCount {
	start := len(dst)
	dst = append(dst, t.e[:t.n]...)
	for i := start; i < len(dst); i++ {
		dst[i].ProtoTotal = t.total[dst[i].Proto]
	}
	slices.SortFunc(dst[start:], func(a, b PortCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
	})
	return dst
}
