package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// synFlood writes an Ethernet pcap of seconds*pps SYNs from 10.0.0.1 to
// 198.18.x.y:443, none answered.
func synFlood(t *testing.T, seconds, pps int) string {
	t.Helper()
	return synFloodFrom(t, [4]byte{10, 0, 0, 1}, seconds, pps)
}

func synFloodFrom(t *testing.T, src [4]byte, seconds, pps int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "flood.pcap")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	frame := []byte{
		2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0,
		0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 198, 18, 0, 0,
		0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
	}
	copy(frame[26:30], src[:])
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range seconds * pps {
		binary.BigEndian.PutUint16(frame[32:], uint16(i))
		at := start.Add(time.Duration(i) * time.Second / time.Duration(pps))
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestReplayFlood(t *testing.T) {
	cfg := writeConfig(t, "")
	flood := synFlood(t, 5, 3000)
	code, out, stderr := runCLI(t, "--config", cfg, "replay", "--local", "10.0.0.1/32", flood)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// The key window (500 ms) fills after the 300 ms allowance: 2,100 SYN/s
	// at +0.65 s, past syn_rate_min, suspect; the next tick makes the source
	// and the interface floods, and the node's verdict follows at once. The
	// source's slot goes when it has sent nothing for the whole history.
	want := []string{
		flood + " +0.650s interface attention: syn out 2100/s > 2000/s with syn-ack/syn ratio 0.000 < 0.2; suspect for 1 of 2 ticks needed",
		flood + " +0.650s source 10.0.0.1 attention: syn out 2100/s > 2000/s",
		flood + " +0.700s interface flood: syn out 2400/s > 2000/s",
		flood + " +0.700s source 10.0.0.1 flood: syn out 2400/s > 2000/s",
		flood + " +0.700s node flood: syn out 3000/s > 2000/s",
		flood + " +5.850s source 10.0.0.1 clean",
		flood + " summary: 15000 packets (15000 outgoing, 0 without direction), 5.000s, 117 ticks, 6 intervals; flooded: interface, source 10.0.0.1, node; first flood verdict at +0.700s",
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d:\n got %s\nwant %s…", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[3], "| signature tcp dst_ports 443 avg 54 B sources 10.0.0.1") {
		t.Errorf("signature missing: %s", lines[3])
	}

	code, _, stderr = runCLI(t, "--config", cfg, "replay", "--fail-on-flood", "--local", "10.0.0.1/32", flood)
	if code != exitFailure || !strings.Contains(stderr, "flood found in "+flood) {
		t.Errorf("--fail-on-flood: exit %d, stderr %q", code, stderr)
	}

	code, out, _ = runCLI(t, "--config", cfg, "replay", "--json", "--direction", "out", flood)
	var doc struct {
		Files []struct {
			Packets      int      `json:"packets"`
			Flooded      []string `json:"flooded"`
			FirstVerdict float64  `json:"first_verdict_seconds"`
			Events       []struct {
				OffsetSeconds float64 `json:"offset_seconds"`
				Key           string  `json:"key"`
				State         string  `json:"state"`
				Signature     struct {
					Protocols []string `json:"protocols"`
					DstPorts  []uint16 `json:"dst_ports"`
				} `json:"signature"`
			} `json:"events"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != exitOK || err != nil {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	f := doc.Files[0]
	if f.Packets != 15000 || len(f.Flooded) != 3 || f.FirstVerdict != 0.7 || len(f.Events) != 6 ||
		f.Events[3].Key != "source 10.0.0.1" || f.Events[3].State != "flood" || f.Events[3].Signature.DstPorts[0] != 443 {
		t.Errorf("--json: %+v", f)
	}
}

func TestReplayBadInput(t *testing.T) {
	cfg := writeConfig(t, "")
	dir := t.TempDir()
	flood := synFlood(t, 1, 10)
	b, _ := os.ReadFile(flood)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty, garbage, cut := write("empty.pcap", nil), write("garbage.pcap", []byte("GIF89a garbage")), write("cut.pcap", b[:len(b)-30])
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"replay"}, "want at least one capture FILE"},
		{"missing file", []string{"replay", "--direction", "out", filepath.Join(dir, "nope.pcap")}, "no such file or directory"},
		{"empty", []string{"replay", "--direction", "out", empty}, "capture " + empty + ": empty file"},
		{"garbage", []string{"replay", "--direction", "out", garbage}, "capture " + garbage + ": not a pcap or pcapng file (starts with 47494638)"},
		{"truncated", []string{"replay", "--direction", "out", cut}, "capture " + cut + ": packet 10: truncated: the file ends inside the record"},
		{"no direction", []string{"replay", flood}, "capture " + flood + ": packet 1: no direction recorded (link type ethernet): give --local CIDR (the node's and its VMs' addresses) or --direction out"},
		{"local matches nothing", []string{"replay", "--local", "192.0.2.0/24", flood}, "no packet is from or to the local addresses (--local); give --local CIDR"},
		{"bad direction", []string{"replay", "--direction", "up", flood}, `--direction: direction "up": want in, out or auto`},
		{"bad local", []string{"replay", "--local", "10.0.0.0/33", flood}, `--local`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, append([]string{"--config", cfg}, tc.args...)...)
			if code != exitInput || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

// TestReplayDirectionFromConfigInterfaces: without --local, the addresses of
// the config's interfaces decide direction. A capture none of whose packets
// is from or to lo's addresses is refused, naming where the addresses came
// from and the flag to give; one from 127.0.0.1 is read as lo's egress.
func TestReplayDirectionFromConfigInterfaces(t *testing.T) {
	cfg := writeConfig(t, "interfaces: [lo]\n")
	flood := synFlood(t, 1, 10)
	code, _, stderr := runCLI(t, "--config", cfg, "replay", flood)
	want := "no packet is from or to the local addresses (config interfaces lo); give --local CIDR"
	if code != exitInput || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, stderr, want)
	}
	// A configured interface missing here matters only to a capture that
	// records no direction; the error says which and what to give.
	missing := writeConfig(t, "interfaces: [nosuch0]\n")
	code, _, stderr = runCLI(t, "--config", missing, "replay", flood)
	want = "no direction recorded (link type ethernet) (config interfaces: nosuch0: "
	if code != exitInput || !strings.Contains(stderr, want) || !strings.Contains(stderr, "give --local CIDR") {
		t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, want)
	}
	// A flood from 127.0.0.1 is lo's own egress.
	code, out, stderr := runCLI(t, "--config", cfg, "replay", synFloodFrom(t, [4]byte{127, 0, 0, 1}, 3, 3000))
	if code != exitOK || !strings.Contains(out, "flooded: interface, source 127.0.0.1, node") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}
