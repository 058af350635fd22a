package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command line in-process and returns exit code, stdout, stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeConfig writes a config whose state lives in a temp dir.
func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	body := "state_dir: " + filepath.Join(dir, "state") + "\nsocket: " + filepath.Join(dir, "eg.sock") + "\n" + extra
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadInputExitsTwoAndNamesTheFlag(t *testing.T) {
	cfg := writeConfig(t, "")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad rate", []string{"throttle", "--interface", "lo", "--rate", "fast"}, `--rate "fast": want a rate like 1mbit`},
		{"port zero", []string{"throttle", "--interface", "lo", "--ports", "80,0"}, `--ports "0": want a port 1-65535`},
		{"ssh port", []string{"throttle", "--interface", "lo", "--ports", "22"}, `22`},
		{"port twice", []string{"throttle", "--interface", "lo", "--ports", "80,443,80"}, `ports[2] 80: duplicate port`},
		{"plan port twice", []string{"plan", "--interface", "lo", "--ports", "443,443"}, `ports[1] 443: duplicate port`},
		{"bad cidr", []string{"throttle", "--interface", "lo", "--source", "10.0.0.0/40"}, `--source "10.0.0.0/40": want a CIDR`},
		{"missing interface", []string{"throttle"}, `--interface or --port: one is required`},
		{"bad interface name", []string{"throttle", "--interface", "eth0/1"}, `--interface "eth0/1"`},
		{"absent interface", []string{"throttle", "--interface", "egnosuchif0"}, `--interface "egnosuchif0": no such interface`},
		{"bad ttl", []string{"throttle", "--interface", "lo", "--ttl", "forever"}, `--ttl "forever": want a positive duration`},
		{"ttl over max", []string{"throttle", "--interface", "lo", "--ttl", "48h"}, `above throttle.max_ttl`},
		{"unknown flag", []string{"throttle", "--interface", "lo", "--burst", "10k"}, `unknown flag: --burst`},
		{"unthrottle needs one", []string{"unthrottle"}, `give one of --interface IF, --port VMPORT or --all`},
		{"unthrottle both", []string{"unthrottle", "--interface", "lo", "--all"}, `give one of --interface IF, --port VMPORT or --all`},
		{"unthrottle port and interface", []string{"unthrottle", "--interface", "lo", "--port", "vnet3"}, `give one of`},
		{"unthrottle bad port name", []string{"unthrottle", "--port", "vnet/3"}, `--port "vnet/3"`},
		{"plan on the loopback", []string{"plan", "--interface", "lo"}, `--interface "lo": a loopback device`},
		{"plan bad rate", []string{"plan", "--interface", "eth0", "--rate", "1000"}, `--rate "1000"`},
		{"stray argument", []string{"status", "now"}, `unexpected argument "now"`},
		{"unknown command", []string{"thrtotle"}, `unknown command`},
		{"dashboard with out", []string{"rules", "--dashboard", "--out", "/tmp/x"}, `--dashboard: prints to stdout`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, append([]string{"--config", cfg}, tc.args...)...)
			if code != exitInput || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

func TestBadConfigExitsTwo(t *testing.T) {
	for _, tc := range []struct{ extra, want string }{
		{"throttle: {rate: 1mbit, burst: 10k}\n", `unknown key "throttle.burst"`},
		{"mode: block\n", `mode "block"`},
	} {
		cfg := writeConfig(t, tc.extra)
		code, _, stderr := runCLI(t, "--config", cfg, "status")
		if code != exitInput || !strings.Contains(stderr, tc.want) {
			t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
		}
	}
	code, _, stderr := runCLI(t, "--config", filepath.Join(t.TempDir(), "absent.yaml"), "status")
	if code != exitInput || !strings.Contains(stderr, "absent.yaml") {
		t.Errorf("missing explicit config: exit %d, %q", code, stderr)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	cfg := writeConfig(t, "")
	state := filepath.Join(filepath.Dir(cfg), "state")
	runCLI(t, "--config", cfg, "throttle", "--interface", "lo", "--rate", "fast")
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("bad input created %s", state)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "egressguard ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestRulesDashboardPrintsTheShippedJSON(t *testing.T) {
	code, stdout, stderr := runCLI(t, "rules", "--dashboard")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	shipped, err := os.ReadFile("../../rules/dashboards/egressguard.json")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(shipped) {
		t.Error("rules --dashboard does not print rules/dashboards/egressguard.json")
	}
}
