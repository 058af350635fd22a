package agent

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckWebhookToken(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("tok\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name, path, wantLog, wantErr string
	}{
		{"0640 is enabled", file("ok", 0o640), `"msg":"webhook enabled"`, ""},
		{"missing is disabled", filepath.Join(dir, "none"), `"msg":"webhook disabled: every webhook request is refused"`, ""},
		{"no path is disabled", "", `webhook.token_file is empty`, ""},
		{"world-readable refuses to start", file("wr", 0o644), "", "mode 0644: anyone may read it"},
		{"group-writable refuses to start", file("gw", 0o660), "", "mode 0660: its group may write it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			err := CheckWebhookToken(tt.path, slog.New(slog.NewJSONHandler(&logs, nil)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.path) {
					t.Fatalf("err %v: want one naming %s and %q", err, tt.path, tt.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(logs.String(), tt.wantLog) {
				t.Fatalf("err %v, log %s: want no error and %s", err, logs.String(), tt.wantLog)
			}
		})
	}
}

// TestReloadRefusesAnUnsafeToken: a SIGHUP with a world-readable token keeps
// the old config, as any refused reload does.
func TestReloadRefusesAnUnsafeToken(t *testing.T) {
	a, _, _ := newTestAgent(t, nil)
	cfg := a.cfg
	cfg.Webhook.TokenFile = filepath.Join(t.TempDir(), "webhook.token")
	if err := os.WriteFile(cfg.Webhook.TokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg.Webhook.TokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	old := a.cfg.Webhook.TokenFile
	err := a.Reload(cfg)
	if err == nil || !strings.Contains(err.Error(), "mode 0644") {
		t.Fatalf("Reload with a 0644 token: %v, want a refusal naming the mode", err)
	}
	if strings.Contains(err.Error(), "refusing to start") {
		t.Errorf("Reload error %q: a running agent keeps running, it does not refuse to start", err)
	}
	if a.cfg.Webhook.TokenFile != old {
		t.Errorf("token_file %q after a refused reload, want the old %q", a.cfg.Webhook.TokenFile, old)
	}
}
