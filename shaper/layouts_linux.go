package shaper

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Roots reports, by interface name, the root qdisc of every interface and
// whether it carries our layout, from one link dump, one qdisc dump and a
// filter dump of each hook of the interfaces a shaping device serves: cheap
// enough to run every interval. An interface is ours when a shaping device's
// alias names it, or when its root is the root-HTB layout of an earlier
// release; it is intact when our classifier is on one of its hooks too (a
// layout missing a piece is drift, which Apply repairs). Shaping devices
// themselves are never ours. Each value has only Ours, Intact, Legacy and
// RootKind set; Inspect reads the rest of one interface.
func (s *Shaper) Roots(ctx context.Context) (map[string]Installed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	links, err := s.links()
	if err != nil {
		return nil, err
	}
	qs, err := s.dumpQdiscs(0)
	if err != nil {
		return nil, err
	}
	served := map[string]bool{}
	for _, l := range links {
		if iface, ok := strings.CutPrefix(l.alias, ShapingAlias); ok {
			served[strings.TrimSuffix(iface, ClsactMark)] = true
		}
	}
	out := make(map[string]Installed, len(links))
	for idx, l := range links {
		in := Installed{Ours: served[l.name]}
		in.Intact = in.Ours && s.classified(idx)
		for _, q := range qs[idx] {
			if q.Parent == HandleRoot {
				in.RootKind = q.Kind
				if !strings.HasPrefix(l.alias, ShapingAlias) && ourLegacyRoot(q) {
					in.Ours, in.Legacy = true, true
				}
			}
		}
		out[l.name] = in
	}
	return out, nil
}

// classified reports whether our classifier is on a hook of the interface.
func (s *Shaper) classified(idx uint32) bool {
	for _, hook := range []Hook{HookEgress, HookIngress} {
		fs, err := s.filters(idx, hookParent(hook))
		if err != nil {
			continue // no clsact qdisc: no hook to dump
		}
		for _, f := range fs {
			if f.Prio == FilterPrio && f.Kind == "bpf" && f.Handle == FilterHandle {
				return true
			}
		}
	}
	return false
}

// link is one interface of a link dump.
type link struct{ name, alias string }

// links dumps every interface's name and alias by index.
func (s *Shaper) links() (map[uint32]link, error) {
	msgs, err := s.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofIfInfomsg),
	})
	if err != nil {
		return nil, fmt.Errorf("shaper: dump links: %w", err)
	}
	out := make(map[uint32]link, len(msgs))
	for _, m := range msgs {
		if len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		idx := binary.NativeEndian.Uint32(m.Data[4:8])
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
		if err != nil {
			return nil, fmt.Errorf("shaper: dump links: %w", err)
		}
		var l link
		for ad.Next() {
			switch ad.Type() {
			case unix.IFLA_IFNAME:
				l.name = ad.String()
			case unix.IFLA_IFALIAS:
				l.alias = ad.String()
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("shaper: dump links: %w", err)
		}
		out[idx] = l
	}
	return out, nil
}
