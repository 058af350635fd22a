package capfile

import (
	"encoding/binary"
	"io"
	"strconv"
	"strings"

	"github.com/egressguard/egressguard/detect/packet"
)

// pcapng block types (draft-ietf-opsawg-pcapng §4, §10.1).
const (
	blockSection    = 0x0a0d0d0a
	blockInterface  = 1
	blockPacketObs  = 2 // obsolete Packet Block
	blockSimple     = 3
	blockEnhanced   = 6
	maxBlock        = MaxFrame + 1<<16 // a packet and generous options
	optEnd          = 0
	optComment      = 1
	optIfName       = 2
	optIfDescr      = 3
	optIfTsresol    = 9
	optIfTsoffset   = 14
	optEpbFlags     = 2
	byteOrderMagic  = 0x1a2b3c4d
	pcapngMajor     = 1
	pcapngMinor     = 0
	directionInput  = 1
	directionOutput = 2
)

// ngGuard sits between the file and pcapgo's NgReader. It reads one block
// at a time, refuses any whose fields would make the reader read outside
// the block, divide by zero or allocate beyond MaxFrame, and hands on a
// canonical copy: section and interface blocks with only the options the
// reader needs, packet blocks as they are, other blocks not at all. It also
// keeps each packet block's direction flag (epb_flags), which pcapgo drops.
type ngGuard struct {
	src     io.Reader
	r       *Reader
	order   byteOrder
	ifaces  []ngIface
	block   []byte // the block being handed on
	out     []byte
	off     int
	err     error
	clean   bool // the file ended at a block boundary
	packets int  // packet blocks accepted
	queue   []queued
	head    int
}

type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// queued is what the guard learnt of a packet block pcapgo has yet to return.
type queued struct {
	link  packet.LinkType
	dir   packet.Direction
	every uint32
	iface int
}

type ngIface struct {
	link     packet.LinkType
	snaplen  uint32
	port     string // if_name, when if_description says a bridge port
	filtered bool
}

func (g *ngGuard) Read(p []byte) (int, error) {
	for g.off == len(g.out) {
		if g.err != nil {
			return 0, g.err
		}
		g.err = g.next()
	}
	n := copy(p, g.out[g.off:])
	g.off += n
	return n, nil
}

func (g *ngGuard) fail(format string, args ...any) error {
	return g.r.errf(g.packets+1, "pcapng: "+format, args...)
}

// next reads and checks one block into g.out.
func (g *ngGuard) next() error {
	g.out, g.off = g.out[:0], 0
	var hdr [12]byte
	n, err := io.ReadFull(g.src, hdr[:8])
	if n == 0 && err == io.EOF {
		g.clean = true
		return io.EOF
	}
	if err != nil {
		return g.readErr(err)
	}
	typ := binary.LittleEndian.Uint32(hdr[:4])
	if typ == blockSection {
		if _, err := io.ReadFull(g.src, hdr[8:12]); err != nil {
			return g.readErr(err)
		}
		switch {
		case binary.LittleEndian.Uint32(hdr[8:]) == byteOrderMagic:
			g.order = binary.LittleEndian
		case binary.BigEndian.Uint32(hdr[8:]) == byteOrderMagic:
			g.order = binary.BigEndian
		default:
			return g.fail("section header: byte-order magic %x", hdr[8:12])
		}
		g.ifaces = g.ifaces[:0]
	} else if g.order == nil {
		return g.fail("first block has type %#x, want a section header", typ)
	}
	typ = g.order.Uint32(hdr[:4])
	total := g.order.Uint32(hdr[4:8])
	if total < 12 || total%4 != 0 || total > maxBlock {
		return g.fail("block type %#x: length %d (want a multiple of 4 in 12..%d)", typ, total, maxBlock)
	}
	if cap(g.block) < int(total) {
		g.block = make([]byte, total, max(int(total), 4096))
	}
	b := g.block[:total]
	copy(b, hdr[:8])
	got := 8
	if typ == blockSection {
		copy(b[8:], hdr[8:12])
		got = 12
	}
	if _, err := io.ReadFull(g.src, b[got:]); err != nil {
		return g.readErr(err)
	}
	body := b[8 : total-4]
	switch typ {
	case blockSection:
		return g.section(body)
	case blockInterface:
		return g.iface(body)
	case blockEnhanced, blockPacketObs:
		return g.packetBlock(typ, b, body)
	case blockSimple:
		return g.simple(b, body)
	}
	return nil // statistics, name resolution, custom: not needed, not handed on
}

func (g *ngGuard) readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return g.fail("truncated: the file ends inside a block")
	}
	return g.fail("%v", err)
}

func (g *ngGuard) section(body []byte) error {
	// byte-order magic(4) major(2) minor(2) section length(8) options
	if len(body) < 16 {
		return g.fail("section header: %d bytes, want at least 16", len(body))
	}
	if major, minor := g.order.Uint16(body[4:]), g.order.Uint16(body[6:]); major != pcapngMajor || minor != pcapngMinor {
		return g.fail("section header: version %d.%d, want 1.0", major, minor)
	}
	g.emit(blockSection, body[:16])
	return nil
}

func (g *ngGuard) iface(body []byte) error {
	// link type(2) reserved(2) snaplen(4) options
	if len(body) < 8 {
		return g.fail("interface block: %d bytes, want at least 8", len(body))
	}
	link := packet.LinkType(g.order.Uint16(body))
	snap := g.order.Uint32(body[4:])
	if snap == 0 || snap > MaxFrame {
		snap = MaxFrame
	}
	out := make([]byte, 8, 8+12+16+4)
	g.order.PutUint16(out, uint16(link))
	g.order.PutUint32(out[4:], snap)
	var name, descr string
	err := g.options(body[8:], func(code uint16, v []byte) error {
		switch code {
		case optIfName:
			name = string(v)
		case optIfDescr:
			descr = string(v)
		case optIfTsresol:
			if len(v) != 1 {
				return g.fail("interface %d: if_tsresol of %d bytes, want 1", len(g.ifaces), len(v))
			}
			// pcapgo computes 2^e or 10^e in a uint64: beyond that it divides by zero.
			if e := v[0] & 0x7f; v[0]&0x80 != 0 && e > 63 || v[0]&0x80 == 0 && e > 19 {
				return g.fail("interface %d: if_tsresol %#x out of range", len(g.ifaces), v[0])
			}
			out = g.appendOption(out, code, v)
		case optIfTsoffset:
			if len(v) != 8 {
				return g.fail("interface %d: if_tsoffset of %d bytes, want 8", len(g.ifaces), len(v))
			}
			out = g.appendOption(out, code, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	out = g.appendOption(out, optEnd, nil)
	f := ngIface{link: link, snaplen: snap}
	if role, rest, ok := strings.Cut(descr, " "+DescribeFiltered); ok && rest == "" {
		f.filtered, descr = true, role
	}
	switch descr {
	case DescribeBridgePort:
		f.port = name
		if name == "" {
			return g.fail("interface %d: a bridge port without if_name", len(g.ifaces))
		}
	case DescribeUplink:
	default:
		f.filtered = false // not ours: the words mean nothing
	}
	g.ifaces = append(g.ifaces, f)
	g.emit(blockInterface, out)
	return nil
}

func (g *ngGuard) packetBlock(typ uint32, b, body []byte) error {
	// EPB: interface(4) ts(8) caplen(4) origlen(4); PB: interface(2) drops(2) ts(8) caplen(4) origlen(4).
	if len(body) < 20 {
		return g.fail("packet block: %d bytes, want at least 20", len(body))
	}
	id := g.order.Uint32(body)
	if typ == blockPacketObs {
		id = uint32(g.order.Uint16(body))
	}
	if int64(id) >= int64(len(g.ifaces)) {
		return g.fail("interface %d not described (have %d)", id, len(g.ifaces))
	}
	if l := g.ifaces[id].link; !l.Supported() {
		return g.fail("interface %d: link type %d: not supported (want %s)", id, uint16(l), supported())
	}
	caplen := g.order.Uint32(body[12:])
	if caplen > MaxFrame || int64(caplen) > int64(len(body)-20) {
		return g.fail("captured length %d exceeds the block (%d bytes) or %d", caplen, len(body)-20, MaxFrame)
	}
	dir, every := packet.DirUnknown, uint32(0)
	if typ == blockEnhanced {
		var opts []byte
		if at := 20 + (int(caplen)+3)&^3; at < len(body) {
			opts = body[at:]
		}
		err := g.options(opts, func(code uint16, v []byte) error {
			if code == optEpbFlags && len(v) == 4 {
				switch g.order.Uint32(v) & 3 {
				case directionInput:
					dir = packet.DirIn
				case directionOutput:
					dir = packet.DirOut
				}
			}
			if n, ok := strings.CutPrefix(string(v), SampleEveryComment); code == optComment && ok {
				e, err := strconv.ParseUint(n, 10, 32)
				if err != nil || e < 1 || e > MaxSampleEvery {
					return g.fail("comment %q: want %s1 to %d", v, SampleEveryComment, MaxSampleEvery)
				}
				every = uint32(e)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	g.accept(b, queued{link: g.ifaces[id].link, dir: dir, every: every, iface: int(id)})
	return nil
}

func (g *ngGuard) simple(b, body []byte) error {
	// original length(4), data: pcapgo takes min(origlen, snaplen) bytes.
	if len(g.ifaces) == 0 {
		return g.fail("simple packet block before any interface")
	}
	if len(body) < 4 {
		return g.fail("simple packet block: %d bytes", len(body))
	}
	if l := g.ifaces[0].link; !l.Supported() {
		return g.fail("interface 0: link type %d: not supported (want %s)", uint16(l), supported())
	}
	caplen := min(g.order.Uint32(body), g.ifaces[0].snaplen)
	if int64(caplen) > int64(len(body)-4) {
		return g.fail("simple packet block: %d bytes of data, block holds %d", caplen, len(body)-4)
	}
	g.accept(b, queued{link: g.ifaces[0].link})
	return nil
}

func (g *ngGuard) accept(b []byte, q queued) {
	g.packets++
	if g.head > 0 && g.head == len(g.queue) {
		g.queue, g.head = g.queue[:0], 0
	}
	g.queue = append(g.queue, q)
	g.out = append(g.out, b...)
}

// take fills in what pcapgo does not keep of the oldest packet block handed
// on and not yet taken (pcapgo reads ahead, but returns packets in order):
// the link type (pcapgo keeps it in a uint8), the direction, the sampling
// divisor and, on an interface that is a VM bridge port, the port.
func (g *ngGuard) take(rec *Record) {
	if g.head >= len(g.queue) {
		return
	}
	q := g.queue[g.head]
	g.head++
	rec.Link, rec.Direction, rec.SampleEvery = q.link, q.dir, q.every
	if q.iface < len(g.ifaces) {
		f := g.ifaces[q.iface]
		rec.Port, rec.Filtered = f.port, f.filtered
	}
}

// options walks a block's options (code(2) length(2) value padded to 4),
// refusing any that runs past the block.
func (g *ngGuard) options(b []byte, fn func(code uint16, v []byte) error) error {
	for len(b) >= 4 {
		code, n := g.order.Uint16(b), int(g.order.Uint16(b[2:]))
		if code == optEnd {
			return nil
		}
		if 4+n > len(b) {
			return g.fail("option %d of %d bytes runs past its block", code, n)
		}
		if err := fn(code, b[4:4+n]); err != nil {
			return err
		}
		b = b[min(len(b), 4+(n+3)&^3):]
	}
	return nil
}

func (g *ngGuard) appendOption(out []byte, code uint16, v []byte) []byte {
	out = g.order.AppendUint16(out, code)
	out = g.order.AppendUint16(out, uint16(len(v)))
	out = append(out, v...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}

// emit hands on a block of type typ with body.
func (g *ngGuard) emit(typ uint32, body []byte) {
	total := uint32(12 + len(body))
	g.out = g.order.AppendUint32(g.out, typ)
	g.out = g.order.AppendUint32(g.out, total)
	g.out = append(g.out, body...)
	g.out = g.order.AppendUint32(g.out, total)
}
