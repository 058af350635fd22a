package account

import (
	"cmp"
	"slices"
)

// topPortsCap is how many destinations one key remembers.
const topPortsCap = 4

// topPorts keeps a key's busiest outbound destinations with Space-Saving
// (Metwally et al., 2005): a newcomer replaces the smallest entry and
// inherits its count, so a destination that is truly among the top few is
// never missed. Counts decay by 1/8 per tick so the list follows what the
// key does now rather than what it did an hour ago.
type topPorts struct {
	e [topPortsCap]PortCount
	n int
}

func (t *topPorts) add(proto Proto, port uint16, w uint64) {
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
	t.e[m] = PortCount{Proto: proto, Port: port, Count: t.e[m].Count + w}
}

func (t *topPorts) decay() {
	for i := range t.n {
		t.e[i].Count -= t.e[i].Count >> 3
	}
}

// sorted appends the entries to dst, most packets first.
func (t *topPorts) sorted(dst []PortCount) []PortCount {
	dst = append(dst, t.e[:t.n]...)
	slices.SortFunc(dst, func(a, b PortCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
	})
	return dst
}
