package shaper

import "testing"

func TestFormatRate(t *testing.T) {
	for bits, want := range map[uint64]string{
		1e6: "1mbit", 1e11: "100gbit", 1e12: "1tbit", 1_500_000: "1500kbit", 999: "999bit", 0: "0bit",
	} {
		if got := FormatRate(bits); got != want {
			t.Errorf("FormatRate(%d) = %q, want %q", bits, got, want)
		}
	}
}
