package shaper

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ResolvConf is where the node's DNS resolvers are configured.
const ResolvConf = "/etc/resolv.conf"

// ReadResolvers returns the addresses of the `nameserver` lines of a
// resolv.conf(5) file, zone suffixes dropped; a missing file is no resolvers.
func ReadResolvers(path string) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("shaper: read resolvers: %w", err)
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue // resolv.conf ignores what it cannot parse; so do we
		}
		out = append(out, a.WithZone("").Unmap())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("shaper: read resolvers from %s: %w", path, err)
	}
	return out, nil
}
