package rules

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata/print.golden")

// ruleFile is the part of Prometheus' rule file format the tests look at.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string            `yaml:"record"`
			Alert  string            `yaml:"alert"`
			Expr   string            `yaml:"expr"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func parse(t *testing.T, name string, content []byte) ruleFile {
	t.Helper()
	var f ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(content))
	dec.KnownFields(false)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return f
}

func alertNames(t *testing.T, files map[string][]byte) map[string]map[string]string {
	t.Helper()
	alerts := map[string]map[string]string{}
	for name, content := range files {
		for _, g := range parse(t, name, content).Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					alerts[r.Alert] = r.Labels
				}
			}
		}
	}
	return alerts
}

func TestFilesHoldTheContractAlerts(t *testing.T) {
	files := Files()
	for _, want := range []string{"egressguard.rules.yml", "node-egress.rules.yml", "fleet.rules.yml"} {
		if len(files[want]) == 0 {
			t.Errorf("Files()[%q] is empty", want)
		}
	}
	alerts := alertNames(t, files)
	for _, want := range []string{
		"EgressguardFloodSourceDetected", "EgressguardThrottleRequested", "EgressguardMitigationActive",
		"EgressguardMitigationStuck", "EgressguardActionBudgetExhausted", "EgressguardAgentDown",
		"NodeEgressSaturation", "NodeEgressHighRateSpeedUnknown",
		"EgressguardFleetFlood", "EgressguardAgentDownWhileEgressJumps", "EgressguardMitigationFlapping",
	} {
		if _, ok := alerts[want]; !ok {
			t.Errorf("alert %s missing from the rule files", want)
		}
	}
	// Exactly one alert asks the agents to act, and it is the one built on the
	// agent's flood verdict (see the comment in egressguard.rules.yml).
	var throttling []string
	for name, labels := range alerts {
		if labels["egressguard_action"] != "" {
			throttling = append(throttling, name+"="+labels["egressguard_action"])
		}
	}
	if len(throttling) != 1 || throttling[0] != "EgressguardThrottleRequested=throttle" {
		t.Errorf("alerts with egressguard_action: %v, want only EgressguardThrottleRequested=throttle", throttling)
	}
}

func TestFilesReturnsCopies(t *testing.T) {
	a := Files()
	a["egressguard.rules.yml"][0] = 'X'
	delete(a, "node-egress.rules.yml")
	b := Files()
	if b["egressguard.rules.yml"][0] == 'X' || b["node-egress.rules.yml"] == nil {
		t.Fatal("Files() shares state between calls")
	}
}

// Every alert has a promtool unit test (both firing and quiet cases are checked
// by promtool itself in TestPromtool).
func TestEveryAlertHasAUnitTest(t *testing.T) {
	tests, err := filepath.Glob("tests/*.yml")
	if err != nil || len(tests) == 0 {
		t.Fatalf("no promtool tests in tests/: %v", err)
	}
	var all []byte
	for _, p := range tests {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	for name := range alertNames(t, Files()) {
		if n := bytes.Count(all, []byte("alertname: "+name+"\n")); n < 2 {
			t.Errorf("alert %s has %d promtool evaluations, want at least 2 (firing and quiet)", name, n)
		}
	}
	// promtool 2.42 defaults a test group's interval to 1m: short windows need it set.
	for _, p := range tests {
		b, _ := os.ReadFile(p)
		if groups, intervals := bytes.Count(b, []byte("\n  - name: ")), bytes.Count(b, []byte("\n    interval: ")); groups != intervals {
			t.Errorf("%s: %d test groups but %d explicit intervals", p, groups, intervals)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	// Writing again over existing files succeeds and leaves no temp files.
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := Files()
	if len(entries) != len(files) {
		t.Fatalf("%s holds %d entries, want %d", dir, len(entries), len(files))
	}
	for _, e := range entries {
		got, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, files[e.Name()]) {
			t.Errorf("%s differs from the embedded file", e.Name())
		}
		info, _ := e.Info()
		if info.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", e.Name(), info.Mode().Perm())
		}
	}
}

func TestWriteFailsOnAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Write(file)
	if err == nil || !strings.Contains(err.Error(), "rules: create "+file) {
		t.Fatalf("Write(%q) = %v, want an error naming it", file, err)
	}
}

func TestPrintGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Print(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "print.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./rules -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Print output differs from %s (run go test ./rules -update and review the diff)", golden)
	}
	// The merged output is one rule file holding every group of every file.
	merged := parse(t, "Print output", buf.Bytes())
	var wantGroups int
	for name, content := range Files() {
		wantGroups += len(parse(t, name, content).Groups)
	}
	if len(merged.Groups) != wantGroups {
		t.Errorf("Print output has %d groups, want %d", len(merged.Groups), wantGroups)
	}
}
