package evidence

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/google/gopacket/layers"

	"github.com/egressguard/egressguard/detect/capfile"
	"github.com/egressguard/egressguard/detect/packet"
)

// pcapng block and option codes (draft-ietf-opsawg-pcapng §4, §10).
const (
	ngSection     = 0x0a0d0d0a
	ngInterface   = 1
	ngEnhanced    = 6
	ngByteOrder   = 0x1a2b3c4d
	ngOptEnd      = 0
	ngOptComment  = 1
	ngShbUserAppl = 4
	ngIfName      = 2
	ngIfDescr     = 3
	ngIfTsresol   = 9
	ngEpbFlags    = 2
	ngSnapLen     = 262144
)

// ngIface is one interface block: packets of one capture interface.
type ngIface struct {
	name       string
	bridgePort bool
}

// ngLayout is what a bundle's pcapng holds: its interfaces, in order of
// first use, and each packet's interface id.
type ngLayout struct {
	ifaces []ngIface
	id     []uint32
}

func layout(defaultIface string, ps []Packet) ngLayout {
	var l ngLayout
	ids := map[ngIface]uint32{}
	for _, p := range ps {
		k := ngIface{name: p.Interface, bridgePort: p.BridgePort}
		if k.name == "" {
			k.name = defaultIface
		}
		id, ok := ids[k]
		if !ok {
			id = uint32(len(l.ifaces))
			ids[k] = id
			l.ifaces = append(l.ifaces, k)
		}
		l.id = append(l.id, id)
	}
	return l
}

// option returns an option's encoded size: code, length, value padded to 4.
func optionSize(n int) int64 { return 4 + int64(pad4(n)) }

func pad4(n int) int { return (n + 3) &^ 3 }

// comment is what each packet's opt_comment says: capfile reads it back as
// the packet's sampling weight.
func comment(p Packet) string {
	if p.SampleEvery == 0 {
		return ""
	}
	return capfile.SampleEveryComment + strconv.FormatUint(uint64(p.SampleEvery), 10)
}

// packetBlockSize is the size of p's Enhanced Packet Block.
func packetBlockSize(p Packet) int64 {
	n := 32 + int64(pad4(len(p.Data)))
	opts := false
	if p.Direction != packet.DirUnknown {
		n += optionSize(4)
		opts = true
	}
	if c := comment(p); c != "" {
		n += optionSize(len(c))
		opts = true
	}
	if opts {
		n += 4
	}
	return n
}

func ifaceDescription(f ngIface, filtered bool) string {
	d := capfile.DescribeUplink
	if f.bridgePort {
		d = capfile.DescribeBridgePort
	}
	if filtered {
		d += " " + capfile.DescribeFiltered
	}
	return d
}

// headerSize is the size of the section and interface blocks.
func headerSize(l ngLayout, filtered bool) int64 {
	n := 28 + optionSize(len(application)) + 4
	for _, f := range l.ifaces {
		n += 20 + optionSize(len(f.name)) + optionSize(len(ifaceDescription(f, filtered))) + optionSize(1) + 4
	}
	return n
}

const application = "egressguard"

// writePcapng writes ps as pcapng (little-endian, nanosecond timestamps):
// one interface block per capture interface, named, and described as the
// uplink or a VM bridge port and as filtered by the capture; each packet
// with its direction on that interface (epb_flags) and its sampling
// divisor (opt_comment "sample_every=N"), which `egressguard replay`
// reads back to weigh it as the live capture did.
func writePcapng(f *bufio.Writer, lt layers.LinkType, l ngLayout, filtered bool, ps []Packet, ids []uint32) error {
	le := binary.LittleEndian
	var b []byte
	block := func(typ uint32, body []byte) {
		total := uint32(12 + len(body))
		b = le.AppendUint32(b, typ)
		b = le.AppendUint32(b, total)
		b = append(b, body...)
		b = le.AppendUint32(b, total)
	}
	opt := func(body []byte, code uint16, v []byte) []byte {
		body = le.AppendUint16(body, code)
		body = le.AppendUint16(body, uint16(len(v)))
		body = append(body, v...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		return body
	}
	var body []byte
	body = le.AppendUint32(body, ngByteOrder)
	body = le.AppendUint16(body, 1)
	body = le.AppendUint16(body, 0)
	body = le.AppendUint64(body, 0xffffffffffffffff) // section length unknown
	body = opt(body, ngShbUserAppl, []byte(application))
	body = opt(body, ngOptEnd, nil)
	block(ngSection, body)
	for _, iface := range l.ifaces {
		body = body[:0]
		body = le.AppendUint16(body, uint16(lt))
		body = le.AppendUint16(body, 0)
		body = le.AppendUint32(body, ngSnapLen)
		body = opt(body, ngIfName, []byte(iface.name))
		body = opt(body, ngIfDescr, []byte(ifaceDescription(iface, filtered)))
		body = opt(body, ngIfTsresol, []byte{9})
		body = opt(body, ngOptEnd, nil)
		block(ngInterface, body)
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	for i, p := range ps {
		b, body = b[:0], body[:0]
		ts := uint64(p.At.UnixNano())
		body = le.AppendUint32(body, ids[i])
		body = le.AppendUint32(body, uint32(ts>>32))
		body = le.AppendUint32(body, uint32(ts))
		body = le.AppendUint32(body, uint32(len(p.Data)))
		body = le.AppendUint32(body, uint32(max(p.Length, len(p.Data))))
		body = append(body, p.Data...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		opts := false
		switch p.Direction {
		case packet.DirIn:
			body, opts = opt(body, ngEpbFlags, le.AppendUint32(nil, 1)), true
		case packet.DirOut:
			body, opts = opt(body, ngEpbFlags, le.AppendUint32(nil, 2)), true
		}
		if c := comment(p); c != "" {
			body, opts = opt(body, ngOptComment, []byte(c)), true
		}
		if opts {
			body = opt(body, ngOptEnd, nil)
		}
		block(ngEnhanced, body)
		if int64(len(b)) != packetBlockSize(p) {
			return fmt.Errorf("evidence: packet %d: block of %d bytes, sized %d", i, len(b), packetBlockSize(p))
		}
		if _, err := f.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// packetsThatFit returns how many of the latest packets fit in budget bytes
// of pcapng: the packets nearest the verdict are kept, the oldest left out.
func packetsThatFit(l ngLayout, filtered bool, ps []Packet, budget int64) int {
	size := headerSize(l, filtered)
	for i := len(ps) - 1; i >= 0; i-- {
		size += packetBlockSize(ps[i])
		if size > budget {
			return len(ps) - 1 - i
		}
	}
	return len(ps)
}
