package shaper

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/egressguard/egressguard/internal/anonns"
)

// Probe reports which optional qdiscs the kernel has by installing them on
// a veth in a throwaway network namespace; it fails when htb or u32, which
// every Plan needs, are missing. The namespace disappears with its last
// file descriptor. Without CAP_SYS_ADMIN (a container granted only
// CAP_NET_ADMIN and CAP_NET_RAW, as the DaemonSet is) no namespace can be
// made, so the probe runs on a veth pair with a random name in the current
// namespace instead, deleted before Probe returns.
func Probe(ctx context.Context) (Features, error) {
	if err := ctx.Err(); err != nil {
		return Features{}, err
	}
	ns, err := anonns.New()
	if err == nil {
		defer ns.Close()
		return probeOn(int(ns), "egsprobe0", "egsprobe1")
	}
	if !errors.Is(err, unix.EPERM) {
		return Features{}, fmt.Errorf("shaper: probe: %w", err)
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Features{}, fmt.Errorf("shaper: probe: random name: %w", err)
	}
	dev := fmt.Sprintf("egsprobe%x", b)
	return probeOn(0, dev, dev+"p")
}

// probeOn adds the veth pair dev/peer in the namespace nsFD (0 = current),
// probes on dev and deletes the pair again.
func probeOn(nsFD int, dev, peer string) (Features, error) {
	h, err := netlink.NewHandleAt(netns.NsHandle(nsFD))
	if nsFD == 0 {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return Features{}, fmt.Errorf("shaper: probe: netlink in namespace: %w", err)
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: dev}, PeerName: peer}
	if err := h.LinkAdd(veth); err != nil {
		return Features{}, fmt.Errorf("shaper: probe: add veth: %w", err)
	}
	// Deleting one end removes both; in a throwaway namespace this is tidy,
	// in the current one it is required.
	defer h.LinkDel(veth)
	s, err := Open(Options{NetNS: nsFD})
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
