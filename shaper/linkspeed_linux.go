package shaper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LinkSpeed returns the link speed of iface in bits/s from
// /sys/class/net/IF/speed, or 0 for links that report none (veth, bridge,
// tun, a link that is down).
func LinkSpeed(iface string) (uint64, error) {
	if err := validInterface(iface); err != nil {
		return 0, err
	}
	dir := filepath.Join("/sys/class/net", iface)
	if _, err := os.Stat(dir); err != nil {
		return 0, fmt.Errorf("shaper: link speed of %s: %w", iface, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "speed"))
	switch {
	case errors.Is(err, syscall.EINVAL), errors.Is(err, os.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("shaper: link speed of %s: %w", iface, err)
	}
	mbit, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("shaper: link speed of %s: %q: %w", iface, b, err)
	}
	if mbit <= 0 {
		return 0, nil
	}
	return uint64(mbit) * 1_000_000, nil
}
