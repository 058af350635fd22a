// Package labaddr holds the only destination ranges the lab's traffic
// generators may send to, and picks random addresses inside them.
package labaddr

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
)

// Lab4 and Lab6 are the benchmark ranges the lab's "internet" namespace owns
// as local routes; generators refuse anything outside them.
var (
	Lab4 = netip.MustParsePrefix("198.18.0.0/15")
	Lab6 = netip.MustParsePrefix("2001:db8:ff::/48")
)

// Check returns p masked if it lies entirely inside Lab4 or Lab6.
func Check(p netip.Prefix) (netip.Prefix, error) {
	p = p.Masked()
	for _, lab := range []netip.Prefix{Lab4, Lab6} {
		if p.Addr().Is4() == lab.Addr().Is4() && p.Bits() >= lab.Bits() && lab.Contains(p.Addr()) {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("destination %s: refused, only inside %s or %s", p, Lab4, Lab6)
}

// Default is the whole lab range of the family.
func Default(v6 bool) netip.Prefix {
	if v6 {
		return Lab6
	}
	return Lab4
}

// Random returns a uniformly random address inside p (any prefix: also used
// for spoofed sources).
func Random(p netip.Prefix, rng *rand.Rand) netip.Addr {
	b := p.Addr().As16()
	hostBits := 128 - p.Bits()
	if p.Addr().Is4() {
		hostBits = 32 - p.Bits()
	}
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	rhi, rlo := rng.Uint64(), rng.Uint64()
	switch {
	case hostBits >= 64:
		lo = rlo
		hi |= rhi & (1<<(hostBits-64) - 1)
	case hostBits > 0:
		lo |= rlo & (1<<hostBits - 1)
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		return a.Unmap()
	}
	return a
}
