package shaper

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Attributes of cls_bpf (linux/pkt_cls.h), actions (linux/pkt_cls.h) and
// mirred (linux/tc_act/tc_mirred.h) that the filter dump decodes.
const (
	tcaBPFAct     = 1
	tcaBPFOps     = 5
	tcaActKind    = 1
	tcaActOptions = 2
	tcaMirredParm = 2
)

// dumpedFilter is one filter of a hook as the kernel dumps it.
type dumpedFilter struct {
	Handle uint32
	Prio   uint16
	Proto  uint16 // host order
	Kind   string
	Ops    []byte // cls_bpf: the classic BPF program
	Mirred uint32 // cls_bpf: ifindex of the first mirred action
}

// primeDumpBuffer makes the kernel size this socket's dump messages for
// 32 KiB reads: it records the largest buffer a recvmsg on the socket
// offered (capped at 32 KiB), and a classifier of a few thousand
// instructions does not fit the default page-sized messages.
func (s *Shaper) primeDumpBuffer() error {
	if _, err := s.nl.Send(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request},
		Data:   make([]byte, unix.SizeofIfInfomsg+4), // ifindex 0 + no attributes: replies ENODEV or a link
	}); err != nil {
		return err
	}
	rc, err := s.nl.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, 32768)
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		_, _, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN
	}); err != nil {
		return err
	}
	return rerr
}

// filters dumps the filters under parent on an interface.
func (s *Shaper) filters(ifindex, parent uint32) ([]dumpedFilter, error) {
	msgs, err := s.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETTFILTER, Flags: netlink.Request | netlink.Dump},
		Data:   tcmsg(ifindex, Handle(parent), 0, 0),
	})
	if err != nil {
		return nil, err
	}
	var out []dumpedFilter
	for _, m := range msgs {
		if len(m.Data) < 20 || binary.NativeEndian.Uint32(m.Data[4:8]) != ifindex {
			continue
		}
		info := binary.NativeEndian.Uint32(m.Data[16:20])
		f := dumpedFilter{Handle: binary.NativeEndian.Uint32(m.Data[8:12]), Prio: uint16(info >> 16), Proto: be16(uint16(info))}
		ad, err := netlink.NewAttributeDecoder(m.Data[20:])
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			switch ad.Type() {
			case unix.TCA_KIND:
				f.Kind = ad.String()
			case unix.TCA_OPTIONS:
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						switch nad.Type() {
						case tcaBPFOps:
							f.Ops = nad.Bytes()
						case tcaBPFAct:
							f.Mirred = firstMirred(nad.Bytes())
						}
					}
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decode filter: %w", err)
		}
		out = append(out, f)
	}
	return out, nil
}

// firstMirred returns the target ifindex of the first mirred action in a
// nested action list, 0 when there is none.
func firstMirred(b []byte) uint32 {
	list, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return 0
	}
	var target uint32
	for list.Next() && target == 0 {
		list.Nested(func(act *netlink.AttributeDecoder) error {
			var kind string
			for act.Next() {
				switch act.Type() {
				case tcaActKind:
					kind = act.String()
				case tcaActOptions:
					if kind != "mirred" {
						continue
					}
					act.Nested(func(opt *netlink.AttributeDecoder) error {
						for opt.Next() {
							if p := opt.Bytes(); opt.Type() == tcaMirredParm && len(p) >= 28 {
								target = binary.NativeEndian.Uint32(p[24:28])
							}
						}
						return nil
					})
				}
			}
			return nil
		})
	}
	return target
}
