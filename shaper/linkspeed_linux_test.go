package shaper

import "testing"

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
