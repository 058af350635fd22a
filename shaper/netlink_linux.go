package shaper

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// rawQdisc is a qdisc as the kernel dumps it, options undecoded, so that any
// kind (pfifo_fast, mq, tbf, …) can be recorded and recreated as it was.
type rawQdisc struct {
	Parent, Handle Handle
	Kind           string
	Options        []byte
}

// tcmsg encodes struct tcmsg.
func tcmsg(ifindex uint32, parent, handle Handle, info uint32) []byte {
	b := make([]byte, 20)
	binary.NativeEndian.PutUint32(b[4:], ifindex)
	binary.NativeEndian.PutUint32(b[8:], uint32(handle))
	binary.NativeEndian.PutUint32(b[12:], uint32(parent))
	binary.NativeEndian.PutUint32(b[16:], info)
	return b
}

// linkInfo resolves an interface name in the Shaper's namespace to its
// index and the kind of frames it carries.
func (s *Shaper) linkInfo(name string) (uint32, LinkType, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, name)
	attrs, err := ae.Encode()
	if err != nil {
		return 0, 0, err
	}
	msgs, err := s.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request},
		Data:   append(make([]byte, unix.SizeofIfInfomsg), attrs...),
	})
	if err != nil {
		return 0, 0, fmt.Errorf("shaper: find interface %s: %w", name, err)
	}
	if len(msgs) != 1 || len(msgs[0].Data) < unix.SizeofIfInfomsg {
		return 0, 0, fmt.Errorf("shaper: find interface %s: unexpected reply", name)
	}
	link := LinkRawIP
	switch binary.NativeEndian.Uint16(msgs[0].Data[2:4]) {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		link = LinkEthernet
	}
	return binary.NativeEndian.Uint32(msgs[0].Data[4:8]), link, nil
}

// qdiscs dumps the qdiscs of one interface.
func (s *Shaper) qdiscs(ifindex uint32) ([]rawQdisc, error) {
	all, err := s.dumpQdiscs(ifindex)
	return all[ifindex], err
}

// dumpQdiscs dumps the qdiscs of every interface (the kernel dumps them all
// whatever the request's ifindex), by interface index.
func (s *Shaper) dumpQdiscs(ifindex uint32) (map[uint32][]rawQdisc, error) {
	msgs, err := s.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETQDISC, Flags: netlink.Request | netlink.Dump},
		Data:   tcmsg(ifindex, 0, 0, 0),
	})
	if err != nil {
		return nil, fmt.Errorf("shaper: dump qdiscs: %w", err)
	}
	out := map[uint32][]rawQdisc{}
	for _, m := range msgs {
		if len(m.Data) < 20 {
			continue
		}
		idx := binary.NativeEndian.Uint32(m.Data[4:8])
		q := rawQdisc{
			Handle: Handle(binary.NativeEndian.Uint32(m.Data[8:12])),
			Parent: Handle(binary.NativeEndian.Uint32(m.Data[12:16])),
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[20:])
		if err != nil {
			return nil, fmt.Errorf("shaper: dump qdiscs: %w", err)
		}
		for ad.Next() {
			switch ad.Type() {
			case unix.TCA_KIND:
				q.Kind = ad.String()
			case unix.TCA_OPTIONS:
				q.Options = ad.Bytes()
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("shaper: dump qdiscs: %w", err)
		}
		out[idx] = append(out[idx], q)
	}
	return out, nil
}

// root returns the root qdisc of an interface.
func (s *Shaper) root(ifindex uint32) (rawQdisc, error) {
	qs, err := s.qdiscs(ifindex)
	if err != nil {
		return rawQdisc{}, err
	}
	for _, q := range qs {
		if q.Parent == HandleRoot {
			return q, nil
		}
	}
	return rawQdisc{}, fmt.Errorf("shaper: interface %d has no root qdisc", ifindex)
}

// qdiscRequest sends one RTM_NEWQDISC or RTM_DELQDISC built from a rawQdisc.
func (s *Shaper) qdiscRequest(typ netlink.HeaderType, flags netlink.HeaderFlags, ifindex uint32, q rawQdisc) error {
	ae := netlink.NewAttributeEncoder()
	if q.Kind != "" {
		ae.String(unix.TCA_KIND, q.Kind)
	}
	if len(q.Options) > 0 {
		ae.Bytes(unix.TCA_OPTIONS, q.Options)
	}
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = s.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | netlink.Acknowledge | flags},
		Data:   append(tcmsg(ifindex, q.Parent, q.Handle, 0), attrs...),
	})
	return err
}

// deleteQdisc removes the qdisc at parent (with its children).
func (s *Shaper) deleteQdisc(ifindex uint32, parent, handle Handle) error {
	return s.qdiscRequest(unix.RTM_DELQDISC, 0, ifindex, rawQdisc{Parent: parent, Handle: handle})
}

// putQdisc creates or replaces the qdisc at q.Parent with q's kind and raw options.
func (s *Shaper) putQdisc(ifindex uint32, q rawQdisc) error {
	return s.qdiscRequest(unix.RTM_NEWQDISC, netlink.Create|netlink.Replace, ifindex, q)
}
