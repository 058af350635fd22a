package shaper

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// u32Key is one u32 selector key: the 32-bit big-endian word at Off, masked
// with Mask, must equal Val. It is what `tc filter show` prints as
// "match VAL/MASK at OFF".
type u32Key struct {
	Val, Mask uint32
	Off       int32
}

// Header offsets iproute2 uses for `match ip …` (20-byte IPv4 header) and
// `match ip6 …` (40-byte IPv6 header, no extension headers).
const (
	v4ProtoOff, v4SrcOff, v4DstOff, v4PortsOff = 8, 12, 16, 20
	v6ProtoOff, v6SrcOff, v6DstOff, v6PortsOff = 4, 8, 24, 40
)

// keys compiles m into u32 keys exactly as iproute2's f_u32 does.
func (m Match) keys(v6 bool) []u32Key {
	switch m.Field {
	case "protocol":
		if v6 {
			return []u32Key{{Val: uint32(m.Value) << 8, Mask: 0xff00, Off: v6ProtoOff}}
		}
		return []u32Key{{Val: uint32(m.Value) << 16, Mask: 0xff0000, Off: v4ProtoOff}}
	case "sport", "dport":
		off := int32(v4PortsOff)
		if v6 {
			off = v6PortsOff
		}
		if m.Field == "sport" {
			return []u32Key{{Val: uint32(m.Value) << 16, Mask: 0xffff0000, Off: off}}
		}
		return []u32Key{{Val: uint32(m.Value), Mask: 0xffff, Off: off}}
	case "src", "dst":
		return prefixKeys(m.Prefix, m.Field == "src")
	}
	panic("shaper: unknown match field " + m.Field)
}

func prefixKeys(p netip.Prefix, src bool) []u32Key {
	p = p.Masked()
	addr := p.Addr().AsSlice()
	off := int32(v4DstOff)
	switch {
	case p.Addr().Is6() && src:
		off = v6SrcOff
	case p.Addr().Is6():
		off = v6DstOff
	case src:
		off = v4SrcOff
	}
	var keys []u32Key
	for i := 0; i < p.Bits(); i += 32 {
		mask := uint32(0xffffffff)
		if rest := p.Bits() - i; rest < 32 {
			mask <<= 32 - rest
		}
		keys = append(keys, u32Key{Val: binary.BigEndian.Uint32(addr[i/8:]), Mask: mask, Off: off + int32(i/8)})
	}
	return keys
}

// keys compiles all matches of f.
func (f Filter) keys() []u32Key {
	var out []u32Key
	for _, m := range f.Matches {
		out = append(out, m.keys(f.Protocol == "ipv6")...)
	}
	return out
}

// tc renders m in iproute2's u32 syntax.
func (m Match) tc(v6 bool) string {
	sel := "ip"
	if v6 {
		sel = "ip6"
	}
	switch m.Field {
	case "protocol":
		return fmt.Sprintf("match %s protocol %d 0xff", sel, m.Value)
	case "sport", "dport":
		return fmt.Sprintf("match %s %s %d 0xffff", sel, m.Field, m.Value)
	}
	return fmt.Sprintf("match %s %s %s", sel, m.Field, m.Prefix.Masked())
}
