package capfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/egressguard/egressguard/detect/packet"
	"github.com/egressguard/egressguard/internal/pcaps"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// frame is a small Ethernet/IPv4/UDP frame.
var frame = []byte{
	2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0,
	0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 198, 18, 0, 9,
	0x13, 0x88, 0, 53, 0, 8, 0, 0,
}

// pcapBytes writes a classic pcap of n frames 1 ms apart, with link type lt;
// step overrides the gap after the first packet.
func pcapBytes(t testing.TB, lt layers.LinkType, n int, step time.Duration) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	at := t0
	for i := range n {
		if i > 0 {
			at = at.Add(step)
		}
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func pcapngBytes(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// readAll returns the number of records read and the error that ended the read (nil at EOF).
func readAll(name string, b []byte) (int, error) {
	r, err := NewReader(name, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	var rec Record
	n := 0
	for {
		err := r.Next(&rec)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
		if rec.Number != n {
			return n, errors.New("record numbers out of step")
		}
	}
}

func TestReadsGoodFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"pcap", pcapBytes(t, layers.LinkTypeEthernet, 5, time.Millisecond)},
		{"pcap.gz", gz(pcapBytes(t, layers.LinkTypeEthernet, 5, time.Millisecond))},
		{"pcapng", pcapngBytes(t, 5)},
		{"pcapng.gz", gz(pcapngBytes(t, 5))},
		{"reordered by 5µs", pcapBytes(t, layers.LinkTypeEthernet, 5, -5*time.Microsecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := readAll(tc.name, tc.b)
			if err != nil || n != 5 {
				t.Fatalf("read %d records, err %v; want 5", n, err)
			}
		})
	}
}

// TestBadInput checks that each kind of bad file gets an error naming the
// file and, where a packet is at fault, its number.
func TestBadInput(t *testing.T) {
	good := pcapBytes(t, layers.LinkTypeEthernet, 3, time.Millisecond)
	ng := pcapngBytes(t, 3)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty.pcap", nil, "capture empty.pcap: empty file"},
		{"garbage.pcap", []byte("<html><body>not found</body></html>"), "capture garbage.pcap: not a pcap or pcapng file (starts with 3c68746d)"},
		{"short.pcap", good[:3], "capture short.pcap: 3 bytes: too short for a capture file header"},
		{"header-only-cut.pcap", good[:20], "capture header-only-cut.pcap: pcap header: truncated"},
		{"truncated.pcap", good[:len(good)-10], "capture truncated.pcap: packet 3: truncated: the file ends inside the record"},
		{"truncated-header.pcap", good[:24+16+len(frame)+7], "capture truncated-header.pcap: packet 2: truncated: the file ends inside the record"},
		{"linktype147.pcap", pcapBytes(t, 147, 1, 0), "capture linktype147.pcap: link type 147: not supported (want ethernet 1, raw 101, linux_sll 113, ipv4 228, ipv6 229, nflog 239, linux_sll2 276)"},
		{"backwards.pcap", pcapBytes(t, layers.LinkTypeEthernet, 3, -time.Second), "capture backwards.pcap: packet 2: timestamp 2026-01-02T03:04:04Z goes back 1s from an earlier packet's 2026-01-02T03:04:05Z (more than 10ms)"},
		{"truncated.pcapng", ng[:len(ng)-10], "capture truncated.pcapng: packet 3: pcapng: truncated: the file ends inside a block"},
		{"truncated.pcap.gz", gz(good)[:60], "capture truncated.pcap.gz: packet 1: truncated: the file ends inside the record"},
		{"badlen.pcapng", func() []byte {
			b := bytes.Clone(ng)
			// Claim a captured length past the first packet block's end.
			epb := blocks(b)[2]
			copy(b[epb+20:], []byte{0xff, 0xff, 0, 0})
			return b
		}(), "capture badlen.pcapng: packet 1: pcapng: captured length 65535 exceeds the block (44 bytes) or 262144"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(tc.name, tc.b)
			if err == nil {
				t.Fatal("no error")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %v is not a capfile.Error", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// blocks returns the offsets of a little-endian pcapng file's blocks.
func blocks(b []byte) []int {
	var out []int
	for off := 0; off+8 <= len(b); off += int(le32(b[off+4:])) {
		out = append(out, off)
	}
	return out
}

// TestPublicCaptures reads every public capture to its end and checks the
// packet count against the one the captures' README gives (measured with
// capinfos).
func TestPublicCaptures(t *testing.T) {
	all := pcaps.All(t)
	readme, err := os.ReadFile(filepath.Join(pcaps.Dir(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| [a-z_]+ \| (\S+) \| \d+ \| (\d+) \|`)
	want := map[string]int{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		want[m[1]], _ = strconv.Atoi(m[2])
	}
	for _, c := range all {
		t.Run(c.Name, func(t *testing.T) {
			r, err := Open(c.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var rec Record
			n, links := 0, map[packet.LinkType]int{}
			for {
				err := r.Next(&rec)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n++
				links[rec.Link]++
			}
			if w, ok := want[c.Name]; !ok || n != w {
				t.Errorf("%d packets, README says %d", n, w)
			}
			t.Logf("%d packets, link types %v", n, links)
		})
	}
}

// TestPcapngDirection reads the epb_flags direction pcapgo does not expose.
func TestPcapngDirection(t *testing.T) {
	b := pcapngBytes(t, 2)
	// Rebuild the second packet block with an epb_flags option saying outbound.
	epb := blocks(b)[2]
	n := int(le32(b[epb+4:]))
	second := bytes.Clone(b[epb+n : epb+2*n-4])
	opt := []byte{2, 0, 4, 0, 2, 0, 0, 0, 0, 0, 0, 0}
	total := uint32(len(second) + len(opt) + 4)
	blk := append(append(second, opt...), byte(total), byte(total>>8), 0, 0)
	copy(blk[4:], []byte{byte(total), byte(total >> 8), 0, 0})
	file := append(bytes.Clone(b[:epb+n]), blk...)
	r, err := NewReader("dir.pcapng", bufio.NewReader(bytes.NewReader(file)))
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	var dirs []packet.Direction
	for r.Next(&rec) == nil {
		dirs = append(dirs, rec.Direction)
	}
	if len(dirs) != 2 || dirs[0] != packet.DirUnknown || dirs[1] != packet.DirOut {
		t.Errorf("directions %v, want [unknown out]", dirs)
	}
}

func FuzzReader(f *testing.F) {
	f.Add(pcapBytes(f, layers.LinkTypeEthernet, 2, time.Millisecond))
	f.Add(pcapngBytes(f, 2))
	f.Add(gz(pcapngBytes(f, 1)))
	f.Add(pcapBytes(f, layers.LinkTypeLinuxSLL, 2, time.Millisecond))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := readAll("fuzz", b)
		if err != nil && !strings.HasPrefix(err.Error(), "capture fuzz: ") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
