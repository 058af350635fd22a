package shaper

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLinkSpeed(t *testing.T) {
	tests := []struct {
		iface   string
		want    uint64
		wantErr bool
	}{
		{"lo", 0, false}, // virtual: no speed
		{"egs-nosuchif", 0, true},
		{"", 0, true},
		{"../../etc", 0, true},
	}
	for _, tt := range tests {
		got, err := LinkSpeed(tt.iface)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("LinkSpeed(%q) = %d, %v; want %d, error %v", tt.iface, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestLinkSpeedVirtualReportsNone builds a /sys layout like this kernel's: a
// veth that reports 10000 Mb/s under devices/virtual, a NIC under a PCI path.
func TestLinkSpeedVirtualReportsNone(t *testing.T) {
	sys := t.TempDir()
	dev := func(path, speed string) {
		if err := os.MkdirAll(filepath.Join(sys, path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, path, "speed"), []byte(speed+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(path)
		if err := os.MkdirAll(filepath.Join(sys, "class/net"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("../../", path), filepath.Join(sys, "class/net", name)); err != nil {
			t.Fatal(err)
		}
	}
	dev("devices/virtual/net/veth0", "10000")
	dev("devices/pci0000:00/0000:00:03.0/net/eth1", "25000")
	dev("devices/pci0000:00/0000:00:04.0/net/eth2", "-1")
	for iface, want := range map[string]uint64{"veth0": 0, "eth1": 25_000_000_000, "eth2": 0} {
		got, err := linkSpeedAt(filepath.Join(sys, "class/net"), iface)
		if err != nil || got != want {
			t.Errorf("linkSpeedAt(%s) = %d, %v; want %d", iface, got, err, want)
		}
	}
}
