package detect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// sampleLine is one line of a testdata/*.jsonl sequence: one interval of one
// interface, with the counts a capture reports. The sequences model the
// scenarios of docs/design.md §3 at one-second intervals.
type sampleLine struct {
	At           time.Time             `json:"at"`
	Interval     string                `json:"interval"`
	Interface    string                `json:"interface"`
	TxBytes      uint64                `json:"tx_bytes"`
	TxPackets    uint64                `json:"tx_packets"`
	SynOut       uint64                `json:"syn_out"`
	SynAckIn     uint64                `json:"synack_in"`
	RstOut       uint64                `json:"rst_out"`
	UDPOut       uint64                `json:"udp_out"`
	UDPIn        uint64                `json:"udp_in"`
	Destinations uint64                `json:"destinations"`
	DstPorts     map[uint16]uint64     `json:"dst_ports"`
	Sources      map[netip.Addr]uint64 `json:"sources"`
	SourceMACs   map[netip.Addr]string `json:"source_macs"`
	SampleDsts   []netip.AddrPort      `json:"sample_dsts"`
}

func loadSamples(t testing.TB, name string) []Sample {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Sample
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var l sampleLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("%s.jsonl:%d: %v", name, n, err)
		}
		iv, err := time.ParseDuration(l.Interval)
		if err != nil {
			t.Fatalf("%s.jsonl:%d: %v", name, n, err)
		}
		var macs map[netip.Addr]net.HardwareAddr
		for a, m := range l.SourceMACs {
			hw, err := net.ParseMAC(m)
			if err != nil {
				t.Fatalf("%s.jsonl:%d: %v", name, n, err)
			}
			if macs == nil {
				macs = make(map[netip.Addr]net.HardwareAddr)
			}
			macs[a] = hw
		}
		out = append(out, Sample{
			Interface: l.Interface, At: l.At, Interval: iv, TxBytes: l.TxBytes, TxPackets: l.TxPackets,
			Counts: Counts{
				SynOut: l.SynOut, SynAckIn: l.SynAckIn, RstOut: l.RstOut, UDPOut: l.UDPOut, UDPIn: l.UDPIn,
				Destinations: l.Destinations, DstPorts: l.DstPorts, Sources: l.Sources, SourceMACs: macs,
				SampleDsts: l.SampleDsts,
			},
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var stateRank = map[State]int{StateClean: 0, StateAttention: 1, StateFlood: 2}

func TestScenarios(t *testing.T) {
	cfg := DefaultConfig()
	tests := []struct {
		name string
		// floodStart/floodEnd index the first flood and first clean interval
		// of the sequence; -1 for benign sequences.
		floodStart, floodEnd int
		wantMax              State  // highest state ever reached
		wantTopSource        string // first of TopSources when the flood is declared
		wantTopMAC           string
		wantReason           string // a substring of the first flood verdict's reasons
	}{
		{name: "syn-flood-host", floodStart: 10, floodEnd: 50, wantMax: StateFlood,
			wantTopSource: "203.0.113.10", wantReason: "syn-ack/syn ratio"},
		{name: "raw-socket-answered", floodStart: 5, floodEnd: 25, wantMax: StateFlood,
			wantTopSource: "203.0.113.10", wantReason: "raw-socket pattern"},
		{name: "udp443-flood-vm", floodStart: 10, floodEnd: 25, wantMax: StateFlood,
			wantTopSource: "10.20.0.11", wantTopMAC: "52:54:00:12:34:56", wantReason: "udp out to throttled ports"},
		{name: "upload-443", floodStart: -1, floodEnd: -1, wantMax: StateClean},
		{name: "crawler", floodStart: -1, floodEnd: -1, wantMax: StateAttention},
		{name: "nat-gateway", floodStart: -1, floodEnd: -1, wantMax: StateAttention},
		{name: "short-burst", floodStart: -1, floodEnd: -1, wantMax: StateAttention},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDetector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			samples := loadSamples(t, tt.name)
			enteredAt, exitedAt := -1, -1
			top := StateClean
			var first Verdict
			for i, s := range samples {
				v := d.Observe(s)
				if stateRank[v.State] > stateRank[top] {
					top = v.State
				}
				if v.State == StateFlood && enteredAt < 0 {
					enteredAt, first = i, v
					if !v.Since.Equal(s.At) {
						t.Errorf("interval %d: Since = %v, want the entering sample's time %v", i, v.Since, s.At)
					}
				}
				if v.State != StateFlood && enteredAt >= 0 && exitedAt < 0 {
					exitedAt = i
				}
				if (v.State == StateClean) != (len(v.Reasons) == 0) {
					t.Errorf("interval %d: state %s with reasons %q", i, v.State, v.Reasons)
				}
			}
			if top != tt.wantMax {
				t.Errorf("highest state %s, want %s", top, tt.wantMax)
			}
			if tt.floodStart < 0 {
				if enteredAt >= 0 {
					t.Fatalf("benign sequence declared a flood at interval %d: %q", enteredAt, first.Reasons)
				}
				return
			}
			if want := tt.floodStart + cfg.EnterAfter - 1; enteredAt != want {
				t.Errorf("flood declared at interval %d, want %d (EnterAfter %d after the start at %d)",
					enteredAt, want, cfg.EnterAfter, tt.floodStart)
			}
			if want := tt.floodEnd + cfg.ExitAfter - 1; exitedAt != want {
				t.Errorf("flood ended at interval %d, want %d (ExitAfter %d after the end at %d)",
					exitedAt, want, cfg.ExitAfter, tt.floodEnd)
			}
			if !first.Suspect {
				t.Error("first flood verdict is not Suspect")
			}
			if !strings.Contains(strings.Join(first.Reasons, "; "), tt.wantReason) {
				t.Errorf("reasons %q, want one containing %q", first.Reasons, tt.wantReason)
			}
			if len(first.Evidence.TopSources) == 0 {
				t.Fatal("flood verdict without top sources")
			}
			if got := first.Evidence.TopSources[0]; got.Addr.String() != tt.wantTopSource || got.MAC != tt.wantTopMAC {
				t.Errorf("top source %v %q, want %s %q", got.Addr, got.MAC, tt.wantTopSource, tt.wantTopMAC)
			}
			checkGolden(t, tt.name, first)
		})
	}
}

func checkGolden(t *testing.T, name string, v Verdict) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".verdict.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("verdict differs from %s (run with -update to accept):\n%s", path, got)
	}
}

func TestObserveEdges(t *testing.T) {
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	flood := Counts{SynOut: 50000, Sources: map[netip.Addr]uint64{netip.MustParseAddr("198.51.100.1"): 50000}}

	t.Run("no interval", func(t *testing.T) {
		v := d.Observe(Sample{Interface: "a", At: at, Counts: flood})
		if v.State != StateClean || v.Suspect || v.Evidence.SynOutPps != 0 {
			t.Fatalf("sample without interval changed state: %+v", v)
		}
	})
	t.Run("no traffic", func(t *testing.T) {
		v := d.Observe(Sample{Interface: "idle", At: at, Interval: time.Second})
		if v.State != StateClean || v.Evidence.SynAckRatio != 0 || v.Evidence.RstRatio != 0 || v.Evidence.PortConcentration != 0 {
			t.Fatalf("idle interface: %+v", v)
		}
	})
	t.Run("rates use the interval", func(t *testing.T) {
		v := d.Observe(Sample{Interface: "slow", At: at, Interval: 5 * time.Second, TxBytes: 5000, TxPackets: 50,
			Counts: Counts{SynOut: 5000}})
		if v.Evidence.TxBps != 8000 || v.Evidence.TxPps != 10 || v.Evidence.SynOutPps != 1000 {
			t.Fatalf("rates over 5s: %+v", v.Evidence)
		}
		if v.Suspect {
			t.Fatal("1000 SYN/s is below syn_rate_min but the interval is suspect")
		}
	})
	t.Run("interfaces are independent", func(t *testing.T) {
		for i := range 3 {
			d.Observe(Sample{Interface: "x", At: at.Add(time.Duration(i) * time.Second), Interval: time.Second, Counts: flood})
			v := d.Observe(Sample{Interface: "y", At: at.Add(time.Duration(i) * time.Second), Interval: time.Second})
			if v.State != StateClean {
				t.Fatalf("clean interface y became %s", v.State)
			}
		}
		v := d.Observe(Sample{Interface: "x", At: at.Add(3 * time.Second), Interval: time.Second})
		if v.State != StateFlood {
			t.Fatalf("x after 3 suspect intervals: %s", v.State)
		}
	})
}

// TestBareResetsOfAClosingClient: the numbers CI measured for a crawler at
// 17k connections/s against an overloaded server, which retransmitted
// SYN-ACKs to connections the crawler had already closed (the kernel answers
// each with a bare RST, exactly as it answers a raw-socket flood's SYN-ACKs).
// The crawler closes what it opened; a raw-socket flood never does.
func TestBareResetsOfAClosingClient(t *testing.T) {
	for _, tc := range []struct {
		name     string
		closeOut uint64
		want     State
	}{
		{"crawler closing its connections", 20_300, StateAttention},
		{"raw-socket flood: no closes", 0, StateFlood},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDetector(DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			at := time.Date(2026, 11, 23, 19, 1, 30, 0, time.UTC)
			c := Counts{SynOut: 21_918, SynAckIn: 23_725, RstOut: 19_640, CloseOut: tc.closeOut, Destinations: 19_776,
				DstPorts: map[uint16]uint64{80: 21_918}}
			var v Verdict
			for i := range 10 {
				v = d.Observe(Sample{Interface: "up0", At: at.Add(time.Duration(i) * time.Second), Interval: time.Second, Counts: c})
			}
			if v.State != tc.want {
				t.Fatalf("state %s (%v), want %s", v.State, v.Reasons, tc.want)
			}
		})
	}
}

func TestObserveCleanDoesNotAllocate(t *testing.T) {
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := loadSamples(t, "upload-443")[20]
	d.Observe(s)
	if n := testing.AllocsPerRun(100, func() { d.Observe(s) }); n != 0 {
		t.Fatalf("Observe of a clean sample allocates %v times", n)
	}
}

func TestObserveConcurrent(t *testing.T) {
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	samples := loadSamples(t, "syn-flood-host")
	done := make(chan struct{})
	for _, iface := range []string{"eth0", "eth1", "eth2", "eth3"} {
		go func() {
			defer func() { done <- struct{}{} }()
			for _, s := range samples {
				s.Interface = iface
				d.Observe(s)
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func BenchmarkObserve(b *testing.B) {
	for _, name := range []string{"upload-443", "syn-flood-host"} {
		b.Run(name, func(b *testing.B) {
			samples := loadSamples(b, name)
			d, err := NewDetector(DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				d.Observe(samples[i%len(samples)])
			}
		})
	}
}
