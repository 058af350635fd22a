package shaper

import (
	"encoding/binary"
	"fmt"
	"slices"

	tc "github.com/florianl/go-tc"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// classWire is an htb class as the kernel holds it: rates in bytes/s and
// bursts in scheduler ticks, so that planned and dumped classes compare.
type classWire struct {
	Parent, ClassID          Handle
	Rate, Ceil               uint64 // bytes/s
	Buffer, Cbuffer, Quantum uint32 // ticks, ticks, bytes
}

func (c Class) wire() classWire {
	rate, ceil := c.Rate/8, c.Ceil/8
	return classWire{Parent: c.Parent, ClassID: c.ClassID, Rate: rate, Ceil: ceil,
		Buffer: xmitTicks(c.Burst, rate), Cbuffer: xmitTicks(c.Cburst, ceil), Quantum: c.Quantum}
}

// xmitTicks is iproute2's tc_calc_xmittime: the time to send size bytes at
// rate, truncated to microseconds, in 64 ns scheduler ticks (15.625/µs).
func xmitTicks(size uint32, rate uint64) uint32 {
	usec := uint32(1e6 * (float64(size) / float64(rate)))
	return uint32(float64(usec) * 15.625)
}

// filterWire is a u32 filter as the kernel holds it, with its prio in band 0.
type filterWire struct {
	Protocol uint16 // ETH_P_IP or ETH_P_IPV6
	Prio     uint16
	Keys     []u32Key
	FlowID   Handle
}

func (f Filter) wire() filterWire {
	proto := uint16(unix.ETH_P_IP)
	if f.Protocol == "ipv6" {
		proto = unix.ETH_P_IPV6
	}
	return filterWire{Protocol: proto, Prio: f.Prio, Keys: f.keys(), FlowID: f.FlowID}
}

func (f filterWire) equal(g filterWire) bool {
	return f.Protocol == g.Protocol && f.Prio == g.Prio && f.FlowID == g.FlowID && slices.Equal(f.Keys, g.Keys)
}

// planFilters returns the filters of p in wire form, in installation order.
func planFilters(p Plan) []filterWire {
	out := make([]filterWire, len(p.Filters))
	for i, f := range p.Filters {
		out[i] = f.wire()
	}
	return out
}

// The netlink structures keep __be32/__be16 fields that go-tc encodes in
// native byte order; these swap a host value into that representation.
func be32(v uint32) uint32 { return binary.NativeEndian.Uint32(binary.BigEndian.AppendUint32(nil, v)) }
func be16(v uint16) uint16 { return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v)) }

// filterInfo is tcm_info of a filter: prio in the high half, protocol in
// network byte order in the low half.
func filterInfo(prio, proto uint16) uint32 { return uint32(prio)<<16 | uint32(be16(proto)) }

func rootObject(ifindex uint32, q Qdisc) *tc.Object {
	return &tc.Object{
		Msg: tc.Msg{Family: unix.AF_UNSPEC, Ifindex: ifindex, Handle: uint32(q.Handle), Parent: tc.HandleRoot},
		Attribute: tc.Attribute{Kind: "htb", Htb: &tc.Htb{Init: &tc.HtbGlob{
			Version: 3, Rate2Quantum: 10, Defcls: uint32(q.DefaultClass) & 0xffff,
		}}},
	}
}

func classObject(ifindex uint32, c classWire) *tc.Object {
	spec := func(rate uint64) tc.RateSpec {
		return tc.RateSpec{Linklayer: 1, Rate: uint32(min(rate, 0xffffffff))} // 1 = TC_LINKLAYER_ETHERNET
	}
	htb := &tc.Htb{Parms: &tc.HtbOpt{Rate: spec(c.Rate), Ceil: spec(c.Ceil), Buffer: c.Buffer, Cbuffer: c.Cbuffer, Quantum: c.Quantum}}
	if c.Rate > 0xffffffff {
		htb.Rate64 = &c.Rate
	}
	if c.Ceil > 0xffffffff {
		htb.Ceil64 = &c.Ceil
	}
	return &tc.Object{
		Msg:       tc.Msg{Family: unix.AF_UNSPEC, Ifindex: ifindex, Handle: uint32(c.ClassID), Parent: uint32(c.Parent)},
		Attribute: tc.Attribute{Kind: "htb", Htb: htb},
	}
}

func leafObject(ifindex uint32, q Qdisc) (*tc.Object, error) {
	o := &tc.Object{
		Msg:       tc.Msg{Family: unix.AF_UNSPEC, Ifindex: ifindex, Handle: uint32(q.Handle), Parent: uint32(q.Parent)},
		Attribute: tc.Attribute{Kind: q.Kind},
	}
	switch q.Kind {
	case "sfq":
		o.Sfq = &tc.Sfq{V0: tc.SfqQopt{PerturbPeriod: q.Perturb}}
	case "fq_codel":
		o.FqCodel = &tc.FqCodel{Limit: &q.Limit}
	case "pfifo":
		o.Pfifo = &tc.FifoOpt{Limit: q.Limit}
	default:
		return nil, fmt.Errorf("unsupported leaf qdisc %q", q.Kind)
	}
	return o, nil
}

// decodeLeaf turns a dumped leaf qdisc into the Qdisc value a Plan holds.
func decodeLeaf(r rawQdisc) Qdisc {
	q := Qdisc{Parent: r.Parent, Handle: r.Handle, Kind: r.Kind}
	switch {
	case r.Kind == "pfifo" && len(r.Options) >= 4:
		q.Limit = binary.NativeEndian.Uint32(r.Options)
	case r.Kind == "sfq" && len(r.Options) >= 8:
		q.Perturb = int32(binary.NativeEndian.Uint32(r.Options[4:]))
	case r.Kind == "fq_codel":
		if ad, err := netlink.NewAttributeDecoder(r.Options); err == nil {
			for ad.Next() {
				if ad.Type() == 2 { // TCA_FQ_CODEL_LIMIT
					q.Limit = ad.Uint32()
				}
			}
		}
	}
	return q
}

func filterObject(ifindex uint32, f filterWire, prio uint16) *tc.Object {
	keys := make([]tc.U32Key, len(f.Keys))
	for i, k := range f.Keys {
		keys[i] = tc.U32Key{Val: be32(k.Val), Mask: be32(k.Mask), Off: uint32(k.Off)}
	}
	flow := uint32(f.FlowID)
	return &tc.Object{
		Msg: tc.Msg{Family: unix.AF_UNSPEC, Ifindex: ifindex, Parent: uint32(RootHandle), Info: filterInfo(prio, f.Protocol)},
		Attribute: tc.Attribute{Kind: "u32", U32: &tc.U32{
			ClassID: &flow,
			Sel:     &tc.U32Sel{Flags: 1, NKeys: uint8(len(keys)), Keys: keys}, // 1 = TC_U32_TERMINAL
		}},
	}
}

// decodeFilter turns a dumped u32 node into wire form; ok is false for hash
// table entries and nodes without a class.
func decodeFilter(o tc.Object) (f filterWire, ok bool) {
	if o.Kind != "u32" || o.U32 == nil || o.U32.Sel == nil || o.U32.ClassID == nil {
		return filterWire{}, false
	}
	f = filterWire{Protocol: be16(uint16(o.Info)), Prio: uint16(o.Info >> 16), FlowID: Handle(*o.U32.ClassID)}
	for _, k := range o.U32.Sel.Keys {
		f.Keys = append(f.Keys, u32Key{Val: be32(k.Val), Mask: be32(k.Mask), Off: int32(k.Off)})
	}
	return f, true
}

func decodeClass(o tc.Object) (classWire, ClassStats, bool) {
	if o.Kind != "htb" || o.Htb == nil || o.Htb.Parms == nil {
		return classWire{}, ClassStats{}, false
	}
	p := o.Htb.Parms
	c := classWire{Parent: Handle(o.Parent), ClassID: Handle(o.Handle), Rate: uint64(p.Rate.Rate), Ceil: uint64(p.Ceil.Rate),
		Buffer: p.Buffer, Cbuffer: p.Cbuffer, Quantum: p.Quantum}
	if c.Parent == HandleRoot { // the kernel reports a top-level class's parent as root
		c.Parent = RootHandle
	}
	if o.Htb.Rate64 != nil {
		c.Rate = *o.Htb.Rate64
	}
	if o.Htb.Ceil64 != nil {
		c.Ceil = *o.Htb.Ceil64
	}
	var st ClassStats
	if o.Stats != nil {
		st = ClassStats{Bytes: o.Stats.Bytes, Packets: uint64(o.Stats.Packets), Drops: uint64(o.Stats.Drops), Overlimits: uint64(o.Stats.Overlimits)}
	}
	return c, st, true
}
