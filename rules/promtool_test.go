package rules

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tool returns the path of an external checker or skips the test: CI installs
// them (Debian: prometheus for promtool, prometheus-alertmanager for amtool).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH (apt-get install %s); CI runs this test", name, pkg)
	}
	return path
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	dir := t.TempDir()
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	var written []string
	for name := range Files() {
		written = append(written, filepath.Join(dir, name))
	}

	t.Run("check rules", func(t *testing.T) {
		run(t, promtool, append([]string{"check", "rules"}, written...)...)
	})
	t.Run("check printed rules", func(t *testing.T) {
		var buf bytes.Buffer
		if err := Print(&buf); err != nil {
			t.Fatal(err)
		}
		printed := filepath.Join(t.TempDir(), "all.rules.yml")
		if err := os.WriteFile(printed, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, promtool, "check", "rules", printed)
	})
	t.Run("test rules", func(t *testing.T) {
		tests, err := filepath.Glob("tests/*.yml")
		if err != nil || len(tests) == 0 {
			t.Fatalf("no tests in tests/: %v", err)
		}
		t.Log(run(t, promtool, append([]string{"test", "rules"}, tests...)...))
	})
	t.Run("check example config", func(t *testing.T) {
		// The example points at the packaged path; check a copy pointing at the
		// files just written so that promtool checks them through the config too.
		cfg, err := os.ReadFile("examples/prometheus.yml")
		if err != nil {
			t.Fatal(err)
		}
		const packaged = "/usr/share/egressguard/rules/"
		if !bytes.Contains(cfg, []byte(packaged)) {
			t.Fatalf("examples/prometheus.yml does not load rules from %s", packaged)
		}
		cfg = bytes.ReplaceAll(cfg, []byte(packaged), []byte(dir+"/"))
		path := filepath.Join(t.TempDir(), "prometheus.yml")
		if err := os.WriteFile(path, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		out := run(t, promtool, "check", "config", path)
		if want := fmt.Sprintf("SUCCESS: %d rule files found", len(written)); !strings.Contains(out, want) {
			t.Errorf("promtool check config: want %q in\n%s", want, out)
		}
	})
}

func TestAmtoolCheckConfig(t *testing.T) {
	amtool := tool(t, "amtool", "prometheus-alertmanager")
	out := run(t, amtool, "check-config", "examples/alertmanager.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("amtool check-config: no SUCCESS in\n%s", out)
	}
}

// TestPromtoolDashboardQueries checks every PromQL expression of the Grafana
// dashboard with promtool: each becomes a recording rule of a throwaway rule
// file, so promtool's parser sees exactly what Prometheus would evaluate
// (the dashboard's variables expanded).
func TestPromtoolDashboardQueries(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	qs, err := DashboardQueries()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range qs {
		fmt.Fprintf(&b, "      # %s\n      - record: dashboard:query%d\n        expr: %q\n", q.Panel, i, q.Expand())
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, promtool, "check", "rules", path)
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(qs)); !strings.Contains(out, want) {
		t.Errorf("promtool check rules: want %q in\n%s", want, out)
	}
	t.Logf("%d dashboard queries: %s", len(qs), strings.TrimSpace(out))
}
