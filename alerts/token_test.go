package alerts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(write("target", "tok\n", 0o640), link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		path    string
		want    string
		wantErr error
		detail  string
	}{
		{"owner only", write("a", "s3cret\n", 0o600), "s3cret", nil, ""},
		{"group read (Alertmanager's group)", write("b", "  s3cret \n", 0o640), "s3cret", nil, ""},
		{"owner read only", write("c", "s3cret", 0o400), "s3cret", nil, ""},
		{"through a symlink (Kubernetes Secret)", link, "tok", nil, ""},
		{"world readable", write("d", "s3cret", 0o644), "", ErrTokenMode, "mode 0644: anyone may read it"},
		{"group writable", write("e", "s3cret", 0o660), "", ErrTokenMode, "mode 0660: its group may write it"},
		{"world writable", write("f", "s3cret", 0o602), "", ErrTokenMode, "mode 0602: anyone may write it"},
		{"missing", filepath.Join(dir, "nope"), "", ErrNoToken, "missing"},
		{"empty", write("g", " \n", 0o600), "", ErrNoToken, "empty"},
		{"too long", write("h", strings.Repeat("x", maxTokenBytes+1), 0o600), "", nil, "longer than 4096 bytes"},
		{"a directory", dir, "", nil, "is not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadTokenFile(tt.path)
			if tt.detail == "" {
				if err != nil || string(got) != tt.want {
					t.Fatalf("ReadTokenFile = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.detail) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("error %v: want one naming %s and %q", err, tt.path, tt.detail)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v: want it to wrap %v", err, tt.wantErr)
			}
		})
	}
}

// A token file owned by another user is refused even at mode 0600: its owner
// could rewrite it and order throttles.
func TestReadTokenFileRefusesAnotherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file to another user")
	}
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(p); err != nil {
		t.Fatalf("root-owned 0600 token: %v", err)
	}
	if err := os.Chown(p, 65534, 0); err != nil {
		t.Fatal(err)
	}
	_, err := ReadTokenFile(p)
	if !errors.Is(err, ErrTokenOwner) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "owner uid 65534") {
		t.Fatalf("token owned by uid 65534: %v; want ErrTokenOwner naming the file and the uid", err)
	}
}
