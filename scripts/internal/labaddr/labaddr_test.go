package labaddr

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{"198.18.0.0/15", true},
		{"198.19.7.0/24", true},
		{"198.18.0.1/32", true},
		{"198.16.0.0/12", false},
		{"10.0.0.0/8", false},
		{"0.0.0.0/0", false},
		{"2001:db8:ff::/48", true},
		{"2001:db8:ff:1::/64", true},
		{"2001:db8::/32", false},
		{"::ffff:198.18.0.0/111", false},
	} {
		_, err := Check(netip.MustParsePrefix(tc.prefix))
		if (err == nil) != tc.ok {
			t.Errorf("Check(%s) err = %v, want ok %v", tc.prefix, err, tc.ok)
		}
	}
}

func TestRandomStaysInside(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		prefix      string
		minDistinct int
	}{{"198.18.0.0/15", 990}, {"2001:db8:ff::/48", 1000}, {"10.9.0.0/24", 200}, {"198.18.3.4/32", 1}} {
		p, pfx := tc.prefix, netip.MustParsePrefix(tc.prefix)
		seen := map[netip.Addr]bool{}
		for range 1000 {
			a := Random(pfx, rng)
			if !pfx.Contains(a) {
				t.Fatalf("Random(%s) = %s, outside", p, a)
			}
			seen[a] = true
		}
		if len(seen) < tc.minDistinct {
			t.Errorf("Random(%s): only %d distinct of 1000", p, len(seen))
		}
	}
}
