// Package capfile streams the packets of a capture file: pcap (microsecond
// or nanosecond, either byte order) or pcapng, plain or gzip-compressed,
// read with gopacket's pcapgo behind a guard that validates every pcapng
// block first, so that no input makes the reader panic or allocate more
// than one record's worth of memory. Errors name the file and the packet.
package capfile

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/egressguard/egressguard/detect/packet"
)

// MaxFrame bounds a record's captured length: libpcap's MAXIMUM_SNAPLEN.
const MaxFrame = 262144

// ReorderTolerance is how far a packet's timestamp may step back from the
// latest one before the file is refused: captures from multi-queue NICs
// stamp packets out of order by microseconds (up to 13 µs in the public
// captures we test on); such packets are read as if at the latest time.
const ReorderTolerance = 10 * time.Millisecond

// What an egressguard evidence bundle's pcapng says beyond the standard
// fields, so that replay weighs its packets as the live capture did: each
// packet's opt_comment "sample_every=N" (it stands for N packets), and each
// interface's if_description, DescribeUplink or DescribeBridgePort,
// followed by " "+DescribeFiltered when its packets passed the capture's
// kernel filter.
const (
	SampleEveryComment = "sample_every="
	DescribeUplink     = "egressguard uplink"
	DescribeBridgePort = "egressguard bridge-port"
	DescribeFiltered   = "filtered"
	// MaxSampleEvery bounds the divisor a comment may give.
	MaxSampleEvery = 1 << 20
)

// Record is one packet of a capture file.
type Record struct {
	Number    int // 1-based position in the file
	Time      time.Time
	Link      packet.LinkType
	Data      []byte           // valid until the next call to Next
	Length    int              // length on the wire (≥ len(Data))
	Direction packet.Direction // on the interface it was captured on
	// SampleEvery is the 1-in-N sampling the packet was taken under (an
	// evidence bundle's packets carry it in their comment); 0 = not sampled.
	SampleEvery uint32
	// Filtered says the packet passed egressguard's capture filter, which
	// keeps TCP segments without SYN, FIN or RST and IP other than TCP, UDP
	// and ICMP 1 in 16 (its interface's description says so).
	Filtered bool
	// Port is the VM bridge port the packet was captured on, when its
	// interface's description says it is one; "" for the uplink.
	Port string
}

// Reader reads one capture file.
type Reader struct {
	name   string
	closer io.Closer
	pcap   *pcapgo.Reader
	ng     *pcapgo.NgReader
	guard  *ngGuard
	link   packet.LinkType
	n      int
	latest time.Time
}

// Open opens path for reading.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capfile: %w", err)
	}
	r, err := NewReader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads a capture from src; name is used in errors.
func NewReader(name string, src io.Reader) (*Reader, error) {
	r := &Reader{name: name}
	br := bufio.NewReaderSize(src, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		if len(magic) == 0 {
			return nil, r.errf(0, "empty file")
		}
		return nil, r.errf(0, "%d bytes: too short for a capture file header", len(magic))
	}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, r.errf(0, "gzip: %v", err)
		}
		br = bufio.NewReaderSize(gz, 1<<16)
		if magic, err = br.Peek(4); err != nil {
			return nil, r.errf(0, "gzip content: %s", short(err))
		}
	}
	switch m := binary.LittleEndian.Uint32(magic); m {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		hdr, _ := br.Peek(24)
		p, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, r.errf(0, "pcap header: %s", short(err))
		}
		// pcapgo keeps the link type in a uint8; LINKTYPE_LINUX_SLL2 is 276.
		// The field's low 16 bits are the link type, the rest FCS flags.
		var order binary.ByteOrder = binary.LittleEndian
		if m == 0xd4c3b2a1 || m == 0x4d3cb2a1 {
			order = binary.BigEndian
		}
		r.link = packet.LinkType(order.Uint32(hdr[20:24]))
		if !r.link.Supported() {
			return nil, r.errf(0, "link type %d: not supported (want %s)", uint16(r.link), supported())
		}
		// Records are bounded by MaxFrame whatever the header claims; the
		// reader's buffer is sized by it.
		p.SetSnaplen(MaxFrame)
		r.pcap = p
	case 0x0a0d0d0a:
		r.guard = &ngGuard{src: br, r: r}
		ng, err := pcapgo.NewNgReader(r.guard, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, r.guardErr(err, "pcapng section header")
		}
		r.ng = ng
	default:
		return nil, r.errf(0, "not a pcap or pcapng file (starts with %x)", magic)
	}
	return r, nil
}

func supported() string {
	return "ethernet 1, raw 101, linux_sll 113, ipv4 228, ipv6 229, nflog 239, linux_sll2 276"
}

// Name is the file name given to Open or NewReader.
func (r *Reader) Name() string { return r.name }

// Next returns the next packet, or io.EOF after the last one. The returned
// record and its Data are valid until the next call.
func (r *Reader) Next(rec *Record) error {
	num := r.n + 1
	var (
		data []byte
		err  error
	)
	*rec = Record{Number: num}
	if r.pcap != nil {
		d, c, e := r.pcap.ZeroCopyReadPacketData()
		data, err = d, e
		rec.Time, rec.Length, rec.Link = c.Timestamp, c.Length, r.link
		if err != nil {
			if err == io.EOF {
				return io.EOF
			}
			if err == io.ErrUnexpectedEOF {
				return r.errf(num, "truncated: the file ends inside the record")
			}
			return r.errf(num, "%s", short(err))
		}
	} else {
		d, c, e := r.ng.ZeroCopyReadPacketData()
		if e != nil {
			if e == io.EOF && r.guard.clean {
				return io.EOF
			}
			return r.guardErr(e, "")
		}
		data, rec.Time, rec.Length = d, c.Timestamp, c.Length
		r.guard.take(rec)
	}
	r.n = num
	rec.Data = data
	if rec.Length < len(data) {
		rec.Length = len(data)
	}
	switch {
	case r.latest.IsZero() || rec.Time.After(r.latest):
		r.latest = rec.Time
	case r.latest.Sub(rec.Time) > ReorderTolerance:
		return r.errf(num, "timestamp %s goes back %s from an earlier packet's %s (more than %s)",
			rec.Time.Format(time.RFC3339Nano), r.latest.Sub(rec.Time), r.latest.Format(time.RFC3339Nano), ReorderTolerance)
	default:
		rec.Time = r.latest
	}
	return nil
}

// Close closes the file opened by Open.
func (r *Reader) Close() error {
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Error is a capture file that cannot be read further.
type Error struct {
	File   string
	Packet int // 1-based; 0 when the file header is at fault
	Msg    string
}

func (e *Error) Error() string {
	if e.Packet == 0 {
		return fmt.Sprintf("capture %s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("capture %s: packet %d: %s", e.File, e.Packet, e.Msg)
}

func (r *Reader) errf(num int, format string, args ...any) error {
	return &Error{File: r.name, Packet: num, Msg: fmt.Sprintf(format, args...)}
}

// guardErr turns what the pcapng reader returned into an Error, preferring
// the guard's own diagnosis of the block it refused.
func (r *Reader) guardErr(err error, what string) error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	num := r.guard.packets
	if what == "" {
		what = "pcapng"
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return r.errf(num, "%s: truncated: the file ends inside a block", what)
	}
	return r.errf(num, "%s: %s", what, short(err))
}

// short names an error without the reader's internal wrapping.
func short(err error) string {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return "truncated"
	}
	return err.Error()
}
