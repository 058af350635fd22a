package detect

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/egressguard/egressguard/internal/netif"
)

// Owned lists, per VM bridge port (its interface name), the source
// prefixes the port may emit beyond the addresses the neighbour and FDB
// tables show it owns (detect.owned): a VM's static or routed addresses
// that it has not used yet, or 0.0.0.0/0 and ::/0 for a router VM that
// forwards other hosts' traffic. A port listed here is judged for spoofing
// in each family it has a prefix of (docs/design.md §11.4). The ports need
// not exist yet: VMs come and go.
type Owned map[string][]netip.Prefix

// Validate reports the first entry that cannot work, naming it as the
// config does (detect.owned.PORT[i]) with its value: a port name the
// kernel would refuse (netif.ValidName), an invalid prefix, an IPv4-mapped
// IPv6 prefix (the capture compares unmapped addresses, so it would never
// match), or a prefix listed twice for one port.
func (o Owned) Validate() error {
	ports := make([]string, 0, len(o))
	for p := range o {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	for _, port := range ports {
		if err := netif.ValidName(port); err != nil {
			return fmt.Errorf("detect.owned %w", err)
		}
		field := "detect.owned." + port
		for i, p := range o[port] {
			at := field + "[" + strconv.Itoa(i) + "]"
			switch {
			case !p.IsValid():
				return fmt.Errorf("%s %q: want a CIDR like 192.0.2.10/32 or an address", at, p)
			case p.Addr().Is4In6():
				return fmt.Errorf("%s %s: write IPv4-mapped addresses as IPv4", at, p)
			}
			if j := slices.Index(o[port], p); j < i {
				return fmt.Errorf("%s %s: listed twice (also %s[%d])", at, p, field, j)
			}
		}
	}
	return nil
}
