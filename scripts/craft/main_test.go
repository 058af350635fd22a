package main

import "testing"

// TestChecksum uses the worked example of RFC 1071 §3: the sum of
// 0001 f203 f4f5 f6f7 is ddf2, so the checksum is its complement.
func TestChecksum(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := checksum(b); got != ^uint16(0xddf2) {
		t.Errorf("checksum = %#04x, want %#04x", got, ^uint16(0xddf2))
	}
	// A message carrying its own checksum sums to zero.
	msg := []byte{8, 0, 0, 0, 1, 2, 3, 4, 5}
	c := checksum(msg)
	msg[2], msg[3] = byte(c>>8), byte(c)
	if got := checksum(msg); got != 0 {
		t.Errorf("checksum over a checksummed message = %#04x, want 0", got)
	}
}
