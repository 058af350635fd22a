package features

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// tc handles and attributes (include/uapi/linux/pkt_sched.h) that
// golang.org/x/sys/unix does not define.
const (
	tcHRoot         = 0xffffffff
	tcHClsact       = 0xfffffff1 // the parent of clsact and ingress qdiscs
	clsactHandle    = 0xffff0000
	clsactIngress   = 0xfffffff2 // TC_H_MAKE(clsact, TC_H_MIN_INGRESS)
	tcaFQCodelFlows = 6
)

// invalidQdiscOptions holds, for each qdisc kind we probe, a TCA_OPTIONS
// payload (nil: none at all) that the kind's init rejects with EINVAL and
// without a kernel-log line. Sources (net/sched, every kernel since 3.5):
// htb_init fails without options; sfq_change and fifo_init fail
// when the options are shorter than their struct; fq_codel_change fails for
// TCA_FQ_CODEL_FLOWS 0.
var invalidQdiscOptions = map[string][]byte{
	"htb":      nil,
	"sfq":      {0},
	"pfifo":    {0},
	"bfifo":    {0},
	"fq_codel": attr(tcaFQCodelFlows, []byte{0, 0, 0, 0}),
}

// invalidFilterOptions does the same for filter kinds: u32_change fails
// with "Selector not specified" for options without TCA_U32_SEL, and
// cls_bpf_set_parms with EINVAL for options with neither TCA_BPF_OPS nor
// TCA_BPF_FD.
var invalidFilterOptions = map[string][]byte{
	"u32": {},
	"bpf": {},
}

// Prober runs probes in one network namespace. The zero value probes in
// the caller's; the package functions use it and cache its answers.
type Prober struct {
	// NetNS is a file descriptor of the namespace to probe in (0: current).
	NetNS int
}

var cache = struct {
	sync.Mutex
	m map[string]error
}{m: map[string]error{}}

// cached returns the remembered outcome of probe key, running fn once.
func cached(key string, fn func() error) error {
	cache.Lock()
	defer cache.Unlock()
	if err, ok := cache.m[key]; ok {
		return err
	}
	err := fn()
	cache.m[key] = err
	return err
}

// HaveQdisc reports whether the kernel has qdisc kind (htb, sfq,
// pfifo, bfifo, fq_codel); see the package comment for the outcomes.
func HaveQdisc(kind string) error {
	return cached("qdisc/"+kind, func() error { return Prober{}.HaveQdisc(kind) })
}

// HaveFilter reports whether the kernel has tc filter kind (u32).
func HaveFilter(kind string) error {
	return cached("filter/"+kind, func() error { return Prober{}.HaveFilter(kind) })
}

// HaveAction reports whether the kernel has tc action kind (mirred).
func HaveAction(kind string) error {
	return cached("action/"+kind, func() error { return Prober{}.HaveAction(kind) })
}

// HaveLink reports whether the kernel can create links of kind (ifb).
func HaveLink(kind string) error {
	return cached("link/"+kind, func() error { return Prober{}.HaveLink(kind) })
}

// HaveAFPacket reports whether packet sockets can be opened: it opens one
// (bound to nothing, so it sees no traffic) and closes it.
func HaveAFPacket() error {
	return cached("af_packet", func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return classify("open AF_PACKET socket", err)
		}
		unix.Close(fd)
		return nil
	})
}

// HaveQdisc asks the kernel to replace the loopback's root qdisc with one
// of kind whose options are invalid: EINVAL means the kind exists, ENOENT
// that it does not; nothing is replaced either way. The loopback's queue
// length is checked first: on a device whose tx_queue_len is 0 the kernel
// would reset it and log "Caught tx_queue_len zero misconfig".
func (p Prober) HaveQdisc(kind string) error {
	opts, ok := invalidQdiscOptions[kind]
	if !ok {
		return fmt.Errorf("features: qdisc %s: no probe for this kind", kind)
	}
	c, lo, err := p.dialLoopback()
	if err != nil {
		return err
	}
	defer c.Close()
	if lo.txQueueLen == 0 {
		return fmt.Errorf("features: qdisc %s: loopback tx_queue_len is 0, probing would reset it", kind)
	}
	attrs := attr(unix.TCA_KIND, cString(kind))
	if opts != nil {
		attrs = append(attrs, attr(unix.TCA_OPTIONS, opts)...)
	}
	req := netlink.Message{
		Header: netlink.Header{
			Type:  unix.RTM_NEWQDISC,
			Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Replace | netlink.Excl,
		},
		Data: append(tcMsg(lo.index, 0, tcHRoot, 0), attrs...),
	}
	return verdict("qdisc "+kind, execute(c, req), func() error {
		// The invalid options were accepted: undo the replacement.
		del := req
		del.Header.Type, del.Header.Flags = unix.RTM_DELQDISC, netlink.Request|netlink.Acknowledge
		del.Data = tcMsg(lo.index, 0, tcHRoot, 0)
		return execute(c, del)
	})
}

// HaveFilter asks for a filter of kind with invalid options on the
// loopback's ingress hook. Filters need a qdisc to hang on, so when the
// loopback has no ingress or clsact qdisc a clsact is added for the probe
// and removed after it; one that is already there is used as it is (the
// failed filter is never installed).
func (p Prober) HaveFilter(kind string) error {
	opts, ok := invalidFilterOptions[kind]
	if !ok {
		return fmt.Errorf("features: filter %s: no probe for this kind", kind)
	}
	c, lo, err := p.dialLoopback()
	if err != nil {
		return err
	}
	defer c.Close()
	hook := netlink.Message{
		Header: netlink.Header{Type: unix.RTM_NEWQDISC, Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl},
		Data:   append(tcMsg(lo.index, clsactHandle, tcHClsact, 0), attr(unix.TCA_KIND, cString("clsact"))...),
	}
	switch err := execute(c, hook); {
	case err == nil:
		defer func() {
			hook.Header.Type, hook.Header.Flags = unix.RTM_DELQDISC, netlink.Request|netlink.Acknowledge
			hook.Data = tcMsg(lo.index, clsactHandle, tcHClsact, 0)
			_ = execute(c, hook)
		}()
	case errors.Is(err, unix.EEXIST):
		// Someone's ingress or clsact qdisc: its ingress block serves.
	default:
		return fmt.Errorf("features: filter %s: no ingress hook on the loopback to probe on: %w", kind, err)
	}
	const prio = 0xfffe // the least urgent but one: clear of anyone's filters
	req := netlink.Message{
		Header: netlink.Header{Type: unix.RTM_NEWTFILTER, Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl},
		Data: append(tcMsg(lo.index, 0, clsactIngress, prio<<16|uint32(htons(unix.ETH_P_ALL))),
			append(attr(unix.TCA_KIND, cString(kind)), attr(unix.TCA_OPTIONS, opts)...)...),
	}
	return verdict("filter "+kind, execute(c, req), func() error {
		del := req
		del.Header.Type, del.Header.Flags = unix.RTM_DELTFILTER, netlink.Request|netlink.Acknowledge
		del.Data = tcMsg(lo.index, 0, clsactIngress, prio<<16|uint32(htons(unix.ETH_P_ALL)))
		return execute(c, del)
	})
}

// probeActions are the action kinds HaveAction knows to ask for with
// invalid options: tcf_mirred_init refuses a mirred without its
// TCA_MIRRED_PARMS ("Mirred requires attributes to be passed", EINVAL), so
// an action with no TCA_ACT_OPTIONS at all is refused by a kernel that has
// it, after the kind was looked up (and its module loaded).
var probeActions = map[string]bool{"mirred": true}

// HaveAction asks the kernel to create a standalone action of kind with
// no options: EINVAL means the kind exists, ENOENT that it does not; no
// action is created either way.
func (p Prober) HaveAction(kind string) error {
	if !probeActions[kind] {
		return fmt.Errorf("features: action %s: no probe for this kind", kind)
	}
	const tcaActTab, tcaActKind = 1, 1 // TCA_ACT_TAB, TCA_ACT_KIND (linux/rtnetlink.h, linux/pkt_cls.h)
	one := nested(1, attr(tcaActKind, cString(kind)))
	tcamsg := make([]byte, 4) // struct tcamsg: family and padding
	return p.create("action "+kind, unix.RTM_NEWACTION, append(tcamsg, nested(tcaActTab, one)...),
		"remove it with tc actions flush action "+kind)
}

// probeLinks are the link kinds HaveLink knows to ask for with invalid
// attributes: ifb_validate refuses an IFLA_ADDRESS that is not 6 bytes
// long (EINVAL) before anything is created; a kind the kernel lacks
// (rtnl_link_ops not found after request_module) is EOPNOTSUPP.
var probeLinks = map[string]bool{"ifb": true}

// HaveLink asks the kernel to create an unnamed link of kind with a one-byte
// hardware address: EINVAL means the kind exists, EOPNOTSUPP that it does
// not; no link is created either way.
func (p Prober) HaveLink(kind string) error {
	if !probeLinks[kind] {
		return fmt.Errorf("features: link %s: no probe for this kind", kind)
	}
	data := make([]byte, unix.SizeofIfInfomsg)
	data = append(data, attr(unix.IFLA_ADDRESS, []byte{0x02})...)
	data = append(data, nested(unix.IFLA_LINKINFO, attr(unix.IFLA_INFO_KIND, cString(kind)))...)
	return p.create("link "+kind, unix.RTM_NEWLINK, data, "find it with ip -d link show type "+kind)
}

// create sends one invalid creation request of type typ with payload data
// in the prober's namespace and judges the answer (verdict); cleanup says
// how to remove what a kernel that accepted it created.
func (p Prober) create(what string, typ netlink.HeaderType, data []byte, cleanup string) error {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: p.NetNS})
	if err != nil {
		return fmt.Errorf("features: dial rtnetlink: %w", err)
	}
	defer c.Close()
	req := netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl},
		Data:   data,
	}
	return verdict(what, execute(c, req), func() error {
		return fmt.Errorf("it was created; %s", cleanup)
	})
}

// verdict maps the kernel's answer to a deliberately invalid request: EINVAL
// (the kind parsed our options and refused them) is presence, ENOENT or
// EOPNOTSUPP absence. Success means the options were not invalid after all;
// undo removes the object and the probe is inconclusive.
func verdict(what string, err error, undo func() error) error {
	switch {
	case errors.Is(err, unix.EINVAL):
		return nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("features: %s: %w", what, ErrNotSupported)
	case err == nil:
		return errors.Join(fmt.Errorf("features: %s: the kernel accepted the probe's invalid options", what), undo())
	default:
		return fmt.Errorf("features: %s: %w", what, err)
	}
}

// classify wraps a socket error: a missing address family is absence.
func classify(op string, err error) error {
	if errors.Is(err, unix.EAFNOSUPPORT) {
		return fmt.Errorf("features: %s: %w: %w", op, ErrNotSupported, err)
	}
	return fmt.Errorf("features: %s: %w", op, err)
}

type loopback struct {
	index      uint32
	txQueueLen uint32
}

// dialLoopback opens rtnetlink in the prober's namespace and reads "lo".
func (p Prober) dialLoopback() (*netlink.Conn, loopback, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: p.NetNS})
	if err != nil {
		return nil, loopback{}, fmt.Errorf("features: dial rtnetlink: %w", err)
	}
	ifi := make([]byte, unix.SizeofIfInfomsg)
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request},
		Data:   append(ifi, attr(unix.IFLA_IFNAME, cString("lo"))...),
	})
	if err == nil && len(msgs) != 1 {
		err = fmt.Errorf("%d answers", len(msgs))
	}
	if err != nil {
		c.Close()
		return nil, loopback{}, fmt.Errorf("features: read the loopback: %w", err)
	}
	var lo loopback
	data := msgs[0].Data
	if len(data) < unix.SizeofIfInfomsg {
		c.Close()
		return nil, loopback{}, errors.New("features: read the loopback: short answer")
	}
	lo.index = uint32(binary.NativeEndian.Uint32(data[4:8]))
	ad, err := netlink.NewAttributeDecoder(data[unix.SizeofIfInfomsg:])
	if err != nil {
		c.Close()
		return nil, loopback{}, fmt.Errorf("features: read the loopback: %w", err)
	}
	lo.txQueueLen = 1 // assumed non-zero unless the kernel says so
	for ad.Next() {
		if ad.Type() == unix.IFLA_TXQLEN {
			lo.txQueueLen = ad.Uint32()
		}
	}
	return c, lo, nil
}

func execute(c *netlink.Conn, m netlink.Message) error {
	_, err := c.Execute(m)
	return err
}

// tcMsg is struct tcmsg: family, padding, ifindex, handle, parent, info.
func tcMsg(ifindex, handle, parent, info uint32) []byte {
	b := make([]byte, 20)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], ifindex)
	binary.NativeEndian.PutUint32(b[8:], handle)
	binary.NativeEndian.PutUint32(b[12:], parent)
	binary.NativeEndian.PutUint32(b[16:], info)
	return b
}

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	n := unix.SizeofRtAttr + len(data)
	b := make([]byte, (n+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(n))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[unix.SizeofRtAttr:], data)
	return b
}

// nested encodes an attribute holding the already encoded attributes inner.
func nested(typ uint16, inner []byte) []byte { return attr(typ|unix.NLA_F_NESTED, inner) }

func cString(s string) []byte { return append([]byte(s), 0) }

func htons(v uint16) uint16 { return v<<8 | v>>8 }
