package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWebhookTokenCheck(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name   string
		path   string
		want   Status
		detail string
	}{
		{"group readable", file("a", "tok", 0o640), StatusOK, "mode 0640"},
		{"world readable", file("b", "tok", 0o644), StatusFail, "mode 0644: anyone may read it"},
		{"group writable", file("c", "tok", 0o620), StatusFail, "its group may write it"},
		{"empty", file("d", "\n", 0o600), StatusWarn, "empty"},
		{"missing", filepath.Join(dir, "none"), StatusWarn, "missing"},
		{"unset", "", StatusWarn, "webhook.token_file is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := webhookTokenCheck(tt.path)
			if c.Status != tt.want || !strings.Contains(c.Detail, tt.detail) {
				t.Fatalf("check %+v: want %s with %q", c, tt.want, tt.detail)
			}
			if c.Status != StatusOK && c.Hint == "" {
				t.Errorf("check %+v: no hint", c)
			}
		})
	}
}
