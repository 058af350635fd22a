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
// /sys/class/net/IF/speed, or 0 for links that report none (a link that is
// down) and for virtual links. A veth reports 10000 Mb/s, but that is no
// wire: a 10gbit ceiling there halves unshaped throughput (docs/design.md §4), so
// every device under /sys/devices/virtual counts as having no speed.
func LinkSpeed(iface string) (uint64, error) {
	return linkSpeedAt("/sys/class/net", iface)
}

func linkSpeedAt(classNet, iface string) (uint64, error) {
	if err := validInterface(iface); err != nil {
		return 0, err
	}
	dir := filepath.Join(classNet, iface)
	target, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return 0, fmt.Errorf("shaper: link speed of %s: %w", iface, err)
	}
	if strings.Contains(filepath.ToSlash(target), "/devices/virtual/") {
		return 0, nil
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
