package evidence

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/attrib"
	"github.com/egressguard/egressguard/detect/packet"
)

// File names inside a bundle.
const (
	VerdictFile = "verdict.json"
	PcapFile    = "packets.pcapng"
)

// timeLayout is fixed-width so that bundle names sort by time.
const timeLayout = "20060102T150405.000000000Z"

const tmpPrefix = ".tmp-bundle-"

// minBundleBytes is the smallest byte cap: an empty pcapng header.
const minBundleBytes = 64

// Packet is one sampled packet.
type Packet struct {
	At   time.Time
	Data []byte
	// Length is the packet's length on the wire; 0 means len(Data) (not
	// truncated by the capture).
	Length int
	// Interface is the interface it was captured on; "" means the
	// verdict's interface.
	Interface string
	// BridgePort says Interface is a VM bridge port: what it receives is
	// the VM's outbound traffic.
	BridgePort bool
	// Direction is which way it crossed Interface, where known.
	Direction packet.Direction
	// SampleEvery is the 1-in-N sampling it was taken under; 0 = not
	// recorded.
	SampleEvery uint32
}

// Bundle is what one verdict leaves behind.
type Bundle struct {
	Verdict   detect.Verdict
	Sources   []attrib.Source
	Processes []attrib.Process
	// LinkType is the link type of Packets' bytes (layers.LinkTypeEthernet
	// for an AF_PACKET capture on an Ethernet or veth interface).
	LinkType layers.LinkType
	// Filtered says the packets passed the capture's kernel filter, which
	// keeps some kinds 1 in synwatch.DataEvery: replay weighs them so.
	Filtered bool
	// Packets are in time order; when not all fit, the latest are kept.
	Packets []Packet
}

// Record is the content of verdict.json.
type Record struct {
	WrittenAt time.Time        `json:"written_at"`
	Verdict   detect.Verdict   `json:"verdict"`
	Sources   []attrib.Source  `json:"sources,omitempty"`
	Processes []attrib.Process `json:"processes,omitempty"`
	Packets   PacketSummary    `json:"packets"`
}

// PacketSummary says how many sampled packets made it into packets.pcapng
// and how many the byte cap left out (the oldest).
type PacketSummary struct {
	LinkType string `json:"link_type"`
	Written  int    `json:"written"`
	Omitted  int    `json:"omitted"`
}

// Options configures a Writer.
type Options struct {
	// Dir holds the bundles and nothing else the Writer could mistake for one
	// (e.g. <state_dir>/evidence). It is created if missing.
	Dir string
	// MaxBundleBytes caps one bundle's files. Packets that do not fit are
	// left out (and counted); only verdict.json alone can exceed it.
	MaxBundleBytes int64
	// MaxBundles caps how many bundles Dir keeps; the oldest go first.
	MaxBundles int
	// Now is the clock that names bundles.
	Now func() time.Time
}

// Writer writes bundles into one directory. It is safe for concurrent use
// within a process; one process should own a directory.
type Writer struct {
	o  Options
	mu sync.Mutex
}

// NewWriter validates o and creates o.Dir.
func NewWriter(o Options) (*Writer, error) {
	switch {
	case o.Dir == "":
		return nil, errors.New("evidence: dir is empty: want a directory path")
	case o.MaxBundleBytes < minBundleBytes:
		return nil, fmt.Errorf("evidence: max_bundle_bytes %d: want at least %d", o.MaxBundleBytes, minBundleBytes)
	case o.MaxBundles < 1:
		return nil, fmt.Errorf("evidence: max_bundles %d: want at least 1", o.MaxBundles)
	case o.Now == nil:
		return nil, errors.New("evidence: no clock: Options.Now is nil")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("evidence: create %s: %w", o.Dir, err)
	}
	return &Writer{o: o}, nil
}

// Write writes b as a new bundle and prunes the oldest bundles beyond the
// cap. It returns the bundle's directory.
func (w *Writer) Write(b Bundle) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.o.Now().UTC()
	rec := Record{WrittenAt: now, Verdict: b.Verdict, Sources: b.Sources, Processes: b.Processes,
		Packets: PacketSummary{LinkType: b.LinkType.String(), Written: len(b.Packets), Omitted: len(b.Packets)}}
	// With both counts at their largest, this is the most verdict.json can
	// weigh; the rest of the budget goes to the pcap.
	js, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return "", fmt.Errorf("evidence: encode verdict: %w", err)
	}
	l := layout(b.Verdict.Interface, b.Packets)
	fit := packetsThatFit(l, b.Filtered, b.Packets, w.o.MaxBundleBytes-int64(len(js))-1)
	rec.Packets.Written, rec.Packets.Omitted = fit, len(b.Packets)-fit

	tmp, err := os.MkdirTemp(w.o.Dir, tmpPrefix)
	if err != nil {
		return "", fmt.Errorf("evidence: create bundle in %s: %w", w.o.Dir, err)
	}
	final, err := w.fill(tmp, now, rec, b, l, fit)
	if err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := w.prune(); err != nil {
		return final, err
	}
	return final, nil
}

// fill writes the files into tmp and renames it into place.
func (w *Writer) fill(tmp string, now time.Time, rec Record, b Bundle, l ngLayout, fit int) (string, error) {
	js, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return "", fmt.Errorf("evidence: encode verdict: %w", err)
	}
	if err := writeFile(filepath.Join(tmp, VerdictFile), func(f *bufio.Writer) error {
		_, err := f.Write(append(js, '\n'))
		return err
	}); err != nil {
		return "", err
	}
	if fit > 0 {
		if err := writeFile(filepath.Join(tmp, PcapFile), func(f *bufio.Writer) error {
			from := len(b.Packets) - fit
			return writePcapng(f, b.LinkType, l, b.Filtered, b.Packets[from:], l.id[from:])
		}); err != nil {
			return "", err
		}
	}
	base := now.Format(timeLayout) + "-" + safeName(b.Verdict.Interface)
	for i := 0; ; i++ {
		name := base
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		final := filepath.Join(w.o.Dir, name)
		err := os.Rename(tmp, final)
		if err == nil {
			return final, syncDir(w.o.Dir)
		}
		// A bundle of the same name (same instant, same interface) makes the
		// rename fail with ENOTEMPTY, which errors.Is counts as ErrExist: try
		// the next suffix.
		if !errors.Is(err, fs.ErrExist) || i >= 100 {
			return "", fmt.Errorf("evidence: rename bundle to %s: %w", final, err)
		}
	}
}

// writeFile creates path, lets fill write it, and makes it durable.
func writeFile(path string, fill func(*bufio.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("evidence: create %s: %w", path, err)
	}
	bw := bufio.NewWriter(f)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("evidence: write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("evidence: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("evidence: sync %s: %w", dir, err)
	}
	return nil
}

// prune removes leftovers of interrupted writes and the oldest bundles
// beyond MaxBundles. Entries that are not bundles are left alone.
func (w *Writer) prune() error {
	entries, err := os.ReadDir(w.o.Dir)
	if err != nil {
		return fmt.Errorf("evidence: list %s: %w", w.o.Dir, err)
	}
	var bundles []string
	var errs []error
	for _, e := range entries {
		switch {
		case !e.IsDir():
		case strings.HasPrefix(e.Name(), tmpPrefix):
			errs = append(errs, os.RemoveAll(filepath.Join(w.o.Dir, e.Name())))
		case isBundleName(e.Name()):
			bundles = append(bundles, e.Name())
		}
	}
	slices.Sort(bundles)
	for _, name := range bundles[:max(0, len(bundles)-w.o.MaxBundles)] {
		errs = append(errs, os.RemoveAll(filepath.Join(w.o.Dir, name)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("evidence: prune %s: %w", w.o.Dir, err)
	}
	return nil
}

func isBundleName(name string) bool {
	if len(name) <= len(timeLayout) || name[len(timeLayout)] != '-' {
		return false
	}
	_, err := time.Parse(timeLayout, name[:len(timeLayout)])
	return err == nil
}

// safeName keeps an interface name usable as part of a directory name.
func safeName(iface string) string {
	if iface == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, iface)
}
