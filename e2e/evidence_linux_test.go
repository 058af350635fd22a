package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/evidence"
	"github.com/egressguard/egressguard/internal/lab"
)

// TestEvidenceReplaysToTheLiveVerdict is the evidence round trip: the agent
// writes a bundle when a flood starts, and `egressguard replay` on the
// bundle's pcapng alone (no --local: the packets carry their direction, the
// port they were captured on and their sampling divisor) names the same
// keys flood as the live verdict did — for a flood from the node itself
// and for a VM's flood seen on its bridge port and on the uplink.
func TestEvidenceReplaysToTheLiveVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		vms  int
		keys func(e *env) []string // keys the live verdict must name flood
		args []string
	}{
		{"node", 0, func(*env) []string { return []string{"source " + lab.NodeAddr4.String()} }, nil},
		{"vm", 1, func(e *env) []string {
			vm := e.lab.VMs[0]
			return []string{"source " + vm.Addr.String(), "port " + vm.Port}
		}, []string{"-ports", "80", "-rate", "25000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.vms, nil)
			ns := e.lab.Node
			if tc.vms > 0 {
				ns = e.lab.VMs[0].NS
				e.arp(e.lab.VMs[0])
			}
			e.startAgent()
			fl := e.flood(ns, 6*time.Second, tc.args...)
			defer fl.Kill()
			bundle := waitBundle(t, filepath.Join(e.dir, "state", "evidence"), 10*time.Second)
			fl.Kill()

			b, err := os.ReadFile(filepath.Join(bundle, evidence.VerdictFile))
			if err != nil {
				t.Fatal(err)
			}
			var rec evidence.Record
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatal(err)
			}
			var live []string
			for _, k := range rec.Verdict.Keys {
				if k.State == detect.StateFlood {
					live = append(live, k.Key)
				}
			}
			t.Logf("live verdict %s; flooding keys %v; bundle packets written %d, omitted %d",
				rec.Verdict.State, live, rec.Packets.Written, rec.Packets.Omitted)
			if rec.Verdict.State != detect.StateFlood {
				t.Fatalf("live verdict %s, want flood", rec.Verdict.State)
			}
			for _, k := range tc.keys(e) {
				if !slices.Contains(live, k) {
					t.Errorf("live verdict does not name %s flood: %v", k, live)
				}
			}

			pcap := filepath.Join(bundle, evidence.PcapFile)
			out, err := exec.CommandContext(e.ctx, e.tools.Egressguard, "--config", e.agent.ConfigPath, "replay", "--json", pcap).CombinedOutput()
			if err != nil {
				t.Fatalf("replay: %v\n%s", err, out)
			}
			var doc struct {
				Files []struct {
					Packets      int      `json:"packets"`
					Weighted     uint64   `json:"weighted"`
					Flooded      []string `json:"flooded"`
					FirstVerdict *float64 `json:"first_verdict_seconds"`
					Duration     float64  `json:"duration_seconds"`
				} `json:"files"`
			}
			if err := json.Unmarshal(out, &doc); err != nil || len(doc.Files) != 1 {
				t.Fatalf("replay --json: %v\n%s", err, out)
			}
			f := doc.Files[0]
			t.Logf("replay of %s: %d packets over %.3f s standing for %d; flooded %v; first verdict %v s",
				filepath.Base(pcap), f.Packets, f.Duration, f.Weighted, f.Flooded, deref(f.FirstVerdict))
			for _, k := range append(live, "node") {
				if !slices.Contains(f.Flooded, k) {
					t.Errorf("replay of the bundle does not name %s flood (live: %v, replay: %v)", k, live, f.Flooded)
				}
			}
			text, _ := exec.CommandContext(e.ctx, e.tools.Egressguard, "--config", e.agent.ConfigPath, "replay", pcap).CombinedOutput()
			t.Logf("replay:\n%s", strings.TrimSpace(string(text)))
			// tcpdump, the independent reader, reads every packet written.
			td, err := exec.CommandContext(e.ctx, "tcpdump", "-nn", "-r", pcap).Output()
			if n := strings.Count(string(td), "\n"); err != nil || n != rec.Packets.Written {
				t.Errorf("tcpdump -r read %d packets (%v), the bundle says %d written", n, err, rec.Packets.Written)
			}
		})
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// waitBundle waits for the first evidence bundle under dir.
func waitBundle(t *testing.T, dir string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			if en.IsDir() && !strings.HasPrefix(en.Name(), ".") {
				return filepath.Join(dir, en.Name())
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no evidence bundle in %s after %s", dir, limit)
	return ""
}
