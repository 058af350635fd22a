package shaper

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Roots reports the root qdisc of every interface, by name, from one link
// dump and one qdisc dump: cheap enough to run every interval. Each value
// has only Ours and RootKind set; Inspect reads the rest of one interface.
func (s *Shaper) Roots(ctx context.Context) (map[string]Installed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	names, err := s.linkNames()
	if err != nil {
		return nil, err
	}
	qs, err := s.dumpQdiscs(0)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Installed, len(names))
	for idx, name := range names {
		var in Installed
		for _, q := range qs[idx] {
			if q.Parent == HandleRoot {
				in = Installed{Ours: ours(q), RootKind: q.Kind}
			}
		}
		out[name] = in
	}
	return out, nil
}

// linkNames dumps every interface's name by index.
func (s *Shaper) linkNames() (map[uint32]string, error) {
	msgs, err := s.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofIfInfomsg),
	})
	if err != nil {
		return nil, fmt.Errorf("shaper: dump links: %w", err)
	}
	out := make(map[uint32]string, len(msgs))
	for _, m := range msgs {
		if len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		idx := binary.NativeEndian.Uint32(m.Data[4:8])
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
		if err != nil {
			return nil, fmt.Errorf("shaper: dump links: %w", err)
		}
		for ad.Next() {
			if ad.Type() == unix.IFLA_IFNAME {
				out[idx] = ad.String()
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("shaper: dump links: %w", err)
		}
	}
	return out, nil
}
