package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/egressguard/egressguard/shaper"
)

// rateUnits maps tc's rate suffixes to bits per second, longest suffix first
// so that "kbit" is not read as "bit". As in tc, "bit" suffixes count bits and
// "bps" suffixes count bytes.
var rateUnits = []struct {
	suffix string
	bits   float64
}{
	{"kibit", 1 << 10}, {"mibit", 1 << 20}, {"gibit", 1 << 30}, {"tibit", 1 << 40},
	{"kibps", 8 << 10}, {"mibps", 8 << 20}, {"gibps", 8 << 30}, {"tibps", 8 << 40},
	{"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}, {"tbit", 1e12},
	{"kbps", 8e3}, {"mbps", 8e6}, {"gbps", 8e9}, {"tbps", 8e12},
	{"bit", 1}, {"bps", 8},
}

// ParseRate reads a rate in tc's notation ("1mbit", "500kbit", "2gbit",
// "125kbps") and returns bits per second. A unit is required: tc reads a
// bare number as bytes per second, which is a classic off-by-eight.
func ParseRate(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			break
		}
		bits := v * u.bits
		if bits < shaper.MinRate || bits > shaper.MaxRate {
			return 0, fmt.Errorf("%q: want a rate between 8bit and 1tbit", s)
		}
		return uint64(math.Round(bits)), nil
	}
	return 0, fmt.Errorf("%q: want a rate like 1mbit or 500kbit", s)
}

// ParseCount reads a whole number written in decimal ("3", "-1"); a
// fraction or an exponent is an error.
func ParseCount(s string) (int, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q: want a whole number", s)
	}
	return int(v), nil
}

// ParsePort reads a TCP/UDP port number, 1 to 65535.
func ParsePort(s string) (uint16, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil || v == 0 || v > 65535 {
		return 0, fmt.Errorf("%q: want a port from 1 to 65535", s)
	}
	return uint16(v), nil
}

// ParsePorts reads a comma-separated list of ports ("80,443") in order. A
// port listed twice is kept twice: shaper.Spec.Validate refuses it, as it
// does in throttle.ports and on the socket, so every input agrees.
func ParsePorts(s string) ([]uint16, error) {
	var out []uint16
	for _, f := range strings.Split(s, ",") {
		p, err := ParsePort(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefix reads a CIDR ("198.51.100.0/24", "2001:db8::/32") or a bare
// address, which becomes a host prefix. The prefix is masked so that
// "10.1.2.3/8" and "10.0.0.0/8" compare equal.
func ParsePrefix(s string) (netip.Prefix, error) {
	t := strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(t); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(t); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q: want a CIDR like 192.0.2.0/24 or an address", s)
}

// ParseDuration reads a Go duration ("30m", "1h30m", "1s") that must be
// positive.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration like 30s, 30m or 24h", s)
	}
	return d, nil
}
