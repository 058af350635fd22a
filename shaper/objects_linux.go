package shaper

import (
	"bytes"
	"encoding/binary"
	"fmt"

	tc "github.com/florianl/go-tc"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Parents and handles of the clsact qdisc and its hooks (TC_H_CLSACT,
// TC_H_MIN_INGRESS, TC_H_MIN_EGRESS).
const (
	HandleIngress Handle = 0xfffffff1 // parent of a clsact or ingress qdisc
	HandleClsact  Handle = 0xffff0000
	parentIngress        = 0xfffffff2
	parentEgress         = 0xfffffff3
)

func hookParent(h Hook) uint32 {
	if h == HookIngress {
		return parentIngress
	}
	return parentEgress
}

func clsactQdisc() rawQdisc {
	return rawQdisc{Parent: HandleIngress, Handle: HandleClsact, Kind: "clsact"}
}

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

// classifierWire is our cls_bpf filter as the kernel holds it.
type classifierWire struct {
	Hook    Hook
	Program []byte // struct sock_filter array
	Target  uint32 // ifindex of the shaping device (mirred)
}

func (c classifierWire) equal(d classifierWire) bool {
	return c.Hook == d.Hook && c.Target == d.Target && bytes.Equal(c.Program, d.Program)
}

// The netlink structures keep __be32/__be16 fields that go-tc encodes in
// native byte order; these swap a host value into that representation.
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
		o.Sfq = &tc.Sfq{V0: tc.SfqQopt{PerturbPeriod: q.Perturb, Limit: q.Limit}}
	case "fq_codel":
		o.FqCodel = &tc.FqCodel{Limit: &q.Limit}
	case "bfifo":
		o.Bfifo = &tc.FifoOpt{Limit: q.Limit}
	default:
		return nil, fmt.Errorf("unsupported leaf qdisc %q", q.Kind)
	}
	return o, nil
}

// decodeLeaf turns a dumped leaf qdisc into the Qdisc value a Plan holds.
func decodeLeaf(r rawQdisc) Qdisc {
	q := Qdisc{Parent: r.Parent, Handle: r.Handle, Kind: r.Kind}
	switch {
	case r.Kind == "bfifo" && len(r.Options) >= 4:
		q.Limit = binary.NativeEndian.Uint32(r.Options)
	case r.Kind == "sfq" && len(r.Options) >= 12:
		q.Perturb = int32(binary.NativeEndian.Uint32(r.Options[4:]))
		q.Limit = binary.NativeEndian.Uint32(r.Options[8:])
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

func classifierObject(ifindex uint32, c classifierWire) *tc.Object {
	ops := c.Program
	n := uint16(len(ops) / 8)
	classID := uint32(ThrottledClass)
	return &tc.Object{
		Msg: tc.Msg{Family: unix.AF_UNSPEC, Ifindex: ifindex, Parent: hookParent(c.Hook), Handle: FilterHandle,
			Info: filterInfo(FilterPrio, unix.ETH_P_ALL)},
		Attribute: tc.Attribute{Kind: "bpf", BPF: &tc.Bpf{
			Ops: &ops, OpsLen: &n, ClassID: &classID,
			Action: &tc.Action{Kind: "mirred", Mirred: &tc.Mirred{Parms: &tc.MirredParam{
				Action:  4, // TC_ACT_STOLEN: the redirected packet leaves this hook
				Eaction: 1, // TCA_EGRESS_REDIR: into the shaping device's root qdisc
				IfIndex: c.Target,
			}}},
		}},
	}
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
