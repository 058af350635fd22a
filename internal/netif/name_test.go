package netif

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"eth0", true},
		{"enp1s0f0np0.100", true}, // 15 bytes
		{"vmbr0", true},
		{"tap101i0", true},
		{"é-utf8", true}, // the kernel allows any other byte (é is C3 A9)
		{"à", false},     // C3 A0: the kernel sees a 0xA0 byte
		{"", false},
		{"enp1s0f0np0.1000", false}, // 16 bytes
		{".", false},
		{"..", false},
		{"...", true},
		{"a/b", false},
		{"eth0:1", false},
		{"a b", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\vb", false},
		{"a\fb", false},
		{"a\rb", false},
		{"a\x00b", false},
		{"eth0\x00", false},
		{"a\xa0b", false}, // the kernel's isspace() includes 0xA0
	} {
		err := ValidName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, ErrName) || !strings.HasPrefix(err.Error(), `"`)) {
			t.Errorf("ValidName(%q) = %v: want a quoted name first, wrapping ErrName", tt.name, err)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"eth0", "a\rb", "a\x00", "..", "0123456789abcde"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidName(name)
		kernel := name != "" && len(name) <= MaxNameLen && name != "." && name != ".."
		for _, b := range []byte("/: \t\n\v\f\r\x00\xa0") {
			kernel = kernel && strings.IndexByte(name, b) < 0
		}
		if (err == nil) != kernel {
			t.Errorf("ValidName(%q) = %v, the kernel's rule says ok=%v", name, err, kernel)
		}
	})
}
