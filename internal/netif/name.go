package netif

import (
	"errors"
	"fmt"
)

// MaxNameLen is the longest interface name Linux accepts, in bytes
// (IFNAMSIZ 16 less the terminating NUL).
const MaxNameLen = 15

// ErrName marks a string that cannot be a Linux interface name.
var ErrName = errors.New("not a Linux interface name")

// ValidName applies the kernel's own rule (dev_valid_name, net/core/dev.c):
// 1 to 15 bytes, not "." or "..", and no '/', ':', NUL or white space as
// the kernel's isspace() has it (space, \t, \n, \v, \f, \r and the Latin-1
// no-break space 0xA0, lib/ctype.c). The error starts with the quoted name
// and wraps ErrName, so callers prefix the field: `--interface "a b": ...`.
func ValidName(name string) error {
	var why string
	switch {
	case name == "":
		why = "empty"
	case len(name) > MaxNameLen:
		why = fmt.Sprintf("%d bytes, at most %d", len(name), MaxNameLen)
	case name == "." || name == "..":
		why = "reserved"
	default:
		// Bytes, not runes: the kernel checks each byte, so the 0xA0 inside
		// a UTF-8 "à" is white space to it too.
		for i := 0; i < len(name); i++ {
			switch name[i] {
			case '/', ':', 0:
				why = "holds '/', ':' or NUL"
			case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0:
				why = "holds white space"
			}
		}
	}
	if why != "" {
		return fmt.Errorf("%q: %w (%s)", name, ErrName, why)
	}
	return nil
}
