package shaper

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/egressguard/egressguard/internal/anonns"
)

// Probe reports which optional qdiscs the kernel has by installing them on
// a veth in a throwaway network namespace; it fails when htb or u32, which
// every Plan needs, are missing. The namespace disappears with its last
// file descriptor.
func Probe(ctx context.Context) (Features, error) {
	if err := ctx.Err(); err != nil {
		return Features{}, err
	}
	ns, err := anonns.New()
	if err != nil {
		return Features{}, fmt.Errorf("shaper: probe: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return Features{}, fmt.Errorf("shaper: probe: netlink in namespace: %w", err)
	}
	defer h.Close()
	const dev = "egsprobe0"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: dev}, PeerName: "egsprobe1"}); err != nil {
		return Features{}, fmt.Errorf("shaper: probe: add veth: %w", err)
	}
	s, err := Open(Options{NetNS: int(ns)})
	if err != nil {
		return Features{}, err
	}
	defer s.Close()
	p, err := NewPlan(Spec{Interface: dev, Rate: 1_000_000, Ports: []uint16{443}, Protocols: []string{"tcp"}}, Features{})
	if err != nil {
		return Features{}, err
	}
	idx, err := s.linkIndex(dev)
	if err != nil {
		return Features{}, err
	}
	p.Leaves = nil // the throttled class stays free for the candidate leaves
	if err := s.install(idx, p); err != nil {
		return Features{}, fmt.Errorf("shaper: probe: kernel cannot hold the htb/u32 layout: %w", err)
	}
	return Features{
		SFQ:     s.probeLeaf(idx, dev, Qdisc{Kind: "sfq", Perturb: 10}),
		FQCodel: s.probeLeaf(idx, dev, Qdisc{Kind: "fq_codel", Limit: 10240}),
	}, nil
}

// probeLeaf reports whether q can be attached under the throttled class of
// an installed layout without a leaf, and detaches it again.
func (s *Shaper) probeLeaf(idx uint32, dev string, q Qdisc) bool {
	q.Parent, q.Handle = ThrottledClass, ThrottledLeaf
	if s.addLeaf(idx, dev, q) != nil {
		return false
	}
	return s.deleteQdisc(idx, q.Parent, q.Handle) == nil
}
