package evidence

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/attrib"
	"github.com/egressguard/egressguard/detect/capfile"
	"github.com/egressguard/egressguard/detect/packet"
)

// stepClock returns a clock that advances one second per call.
func stepClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func testBundle(iface string, packets int) Bundle {
	at := time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC)
	b := Bundle{
		Verdict: detect.Verdict{Interface: iface, State: detect.StateFlood, Suspect: true,
			Reasons: []string{"syn out 50000/s > 2000/s with syn-ack/syn ratio 0.001 < 0.2"}, Since: at,
			Evidence: detect.Evidence{SynOutPps: 50000, TopSources: []detect.SourceCount{{Addr: netip.MustParseAddr("10.20.0.11"), MAC: "52:54:00:12:34:56", Count: 50000}}}},
		Sources:   []attrib.Source{{Addr: netip.MustParseAddr("10.20.0.11"), MAC: "52:54:00:12:34:56", MACFrom: "capture", Bridge: "br0", BridgePort: "vnet3"}},
		Processes: []attrib.Process{{PID: 4242, Exe: "/usr/local/bin/synflood", ExeDeleted: true, Cmdline: []string{"synflood"}}},
		LinkType:  layers.LinkTypeEthernet,
		Filtered:  true,
	}
	for i := range packets {
		data := bytes.Repeat([]byte{byte(i)}, 54+i%7)
		p := Packet{At: at.Add(time.Duration(i) * time.Millisecond), Data: data, Length: len(data) + 10*(i%2),
			Direction: packet.Direction(1 + i%2), SampleEvery: uint32(1) << (i % 5)}
		if i%3 == 0 {
			p.Interface, p.BridgePort = "vnet3", true
		}
		b.Packets = append(b.Packets, p)
	}
	return b
}

func newWriter(t *testing.T, dir string, maxBytes int64, maxBundles int) *Writer {
	t.Helper()
	w, err := NewWriter(Options{Dir: dir, MaxBundleBytes: maxBytes, MaxBundles: maxBundles, Now: stepClock()})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func readRecord(t *testing.T, dir string) Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, VerdictFile))
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func readPcap(t *testing.T, dir string) []Packet {
	t.Helper()
	r, err := capfile.Open(filepath.Join(dir, PcapFile))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []Packet
	var rec capfile.Record
	for {
		err := r.Next(&rec)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Link != packet.LinkEthernet {
			t.Errorf("link type %v, want Ethernet", rec.Link)
		}
		if !rec.Filtered {
			t.Errorf("packet %d not marked filtered", rec.Number)
		}
		out = append(out, Packet{At: rec.Time, Data: slices.Clone(rec.Data), Length: rec.Length, Interface: rec.Port,
			BridgePort: rec.Port != "", Direction: rec.Direction, SampleEvery: rec.SampleEvery})
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func TestWriteRoundTrip(t *testing.T) {
	root := t.TempDir()
	w := newWriter(t, filepath.Join(root, "evidence"), 1<<20, 5)
	b := testBundle("eth0", 20)
	path, err := w.Write(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "evidence", "20260301T120001.000000000Z-eth0"); path != want {
		t.Fatalf("bundle at %s, want %s", path, want)
	}
	rec := readRecord(t, path)
	if rec.Verdict.State != detect.StateFlood || rec.Verdict.Evidence.TopSources[0].MAC != "52:54:00:12:34:56" ||
		!slices.Equal(rec.Sources, b.Sources) || rec.Processes[0].Exe != "/usr/local/bin/synflood" ||
		rec.Packets != (PacketSummary{LinkType: "Ethernet", Written: 20}) {
		t.Fatalf("record %+v does not hold what was written", rec)
	}
	got := readPcap(t, path)
	if len(got) != len(b.Packets) {
		t.Fatalf("pcap holds %d packets, want %d", len(got), len(b.Packets))
	}
	for i, p := range got {
		w := b.Packets[i]
		if !p.At.Equal(w.At) || !bytes.Equal(p.Data, w.Data) || p.Length != w.Length || p.Interface != w.Interface ||
			p.BridgePort != w.BridgePort || p.Direction != w.Direction || p.SampleEvery != w.SampleEvery {
			t.Errorf("packet %d: got %+v, want %+v", i, p, w)
		}
	}
}

func TestWriteByteCap(t *testing.T) {
	tests := []struct {
		name        string
		maxBytes    int64
		packets     int
		wantWritten int
		wantPcap    bool
	}{
		{name: "all fit", maxBytes: 1 << 20, packets: 50, wantWritten: 50, wantPcap: true},
		{name: "some fit", maxBytes: 3000, packets: 50, wantWritten: -1, wantPcap: true},
		{name: "only the verdict fits", maxBytes: 100, packets: 50, wantWritten: 0},
		{name: "no packets", maxBytes: 1 << 20, packets: 0, wantWritten: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWriter(t, t.TempDir(), tt.maxBytes, 5)
			path, err := w.Write(testBundle("eth0", tt.packets))
			if err != nil {
				t.Fatal(err)
			}
			rec := readRecord(t, path)
			if rec.Packets.Written+rec.Packets.Omitted != tt.packets {
				t.Errorf("written %d + omitted %d != %d packets", rec.Packets.Written, rec.Packets.Omitted, tt.packets)
			}
			if tt.wantWritten >= 0 && rec.Packets.Written != tt.wantWritten {
				t.Errorf("written %d, want %d", rec.Packets.Written, tt.wantWritten)
			}
			if tt.wantWritten < 0 && (rec.Packets.Written == 0 || rec.Packets.Omitted == 0) {
				t.Errorf("written %d, omitted %d: want some of each", rec.Packets.Written, rec.Packets.Omitted)
			}
			_, err = os.Stat(filepath.Join(path, PcapFile))
			if hasPcap := err == nil; hasPcap != tt.wantPcap {
				t.Fatalf("pcap present %v, want %v", hasPcap, tt.wantPcap)
			}
			if tt.wantPcap {
				got := readPcap(t, path)
				if n := len(got); n != rec.Packets.Written {
					t.Errorf("pcap holds %d packets, record says %d", n, rec.Packets.Written)
				}
				// The packets nearest the verdict are the ones kept.
				all := testBundle("eth0", tt.packets).Packets
				if len(got) > 0 && !got[0].At.Equal(all[len(all)-len(got)].At) {
					t.Errorf("first packet kept at %s, want %s (the latest %d)", got[0].At, all[len(all)-len(got)].At, len(got))
				}
				if size := dirSize(t, path); size > tt.maxBytes {
					t.Errorf("bundle is %d bytes, cap %d", size, tt.maxBytes)
				}
			}
		})
	}
}

func TestWritePrunesOldest(t *testing.T) {
	dir := t.TempDir()
	// Not bundles: left alone by pruning.
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "notes"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A leftover of a write interrupted by a crash: removed.
	if err := os.Mkdir(filepath.Join(dir, tmpPrefix+"123"), 0o700); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, dir, 1<<16, 3)
	var paths []string
	for _, iface := range []string{"eth0", "eth1", "vnet3", "eth0", "br0/x"} {
		p, err := w.Write(testBundle(iface, 3))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Base(p))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := append([]string{"notes", "state.json"}, paths[2:]...)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("directory holds %q, want %q", names, want)
	}
	if !strings.HasSuffix(paths[4], "-br0_x") {
		t.Errorf("interface name not made safe: %s", paths[4])
	}
}

func TestWriteSameInstant(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	w, err := NewWriter(Options{Dir: dir, MaxBundleBytes: 1 << 16, MaxBundles: 10, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		p, err := w.Write(testBundle("eth0", 1))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, filepath.Base(p))
	}
	want := []string{"20260301T120000.000000000Z-eth0", "20260301T120000.000000000Z-eth0-1", "20260301T120000.000000000Z-eth0-2"}
	if !slices.Equal(got, want) {
		t.Fatalf("bundles %q, want %q", got, want)
	}
}

func TestWriteConcurrent(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, dir, 1<<16, 4)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := w.Write(testBundle("eth"+string(rune('0'+i)), 2)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Fatalf("%d entries, want 4 bundles", len(entries))
	}
}

func TestNewWriterValidates(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{name: "no dir", o: Options{MaxBundleBytes: 1 << 20, MaxBundles: 1, Now: now}, wantErr: "dir is empty"},
		{name: "tiny cap", o: Options{Dir: t.TempDir(), MaxBundleBytes: 10, MaxBundles: 1, Now: now}, wantErr: "max_bundle_bytes 10"},
		{name: "no bundles", o: Options{Dir: t.TempDir(), MaxBundleBytes: 1 << 20, Now: now}, wantErr: "max_bundles 0"},
		{name: "no clock", o: Options{Dir: t.TempDir(), MaxBundleBytes: 1 << 20, MaxBundles: 1}, wantErr: "no clock"},
		{name: "dir is a file", o: Options{Dir: filepath.Join(file, "sub"), MaxBundleBytes: 1 << 20, MaxBundles: 1, Now: now}, wantErr: "evidence: create"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewWriter(tt.o); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewWriter = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
