package netif

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Watched returns the interfaces the agent watches: the configured ones or,
// when none are, those holding a default route in the main table, IPv4
// then IPv6, multipath next hops included; a bridge among them is replaced
// by its uplink ports (Proxmox's vmbr0, libvirt's bridged networking: see
// expandBridges). The agent, the CLI and doctor all ask here, so doctor
// reports on exactly what `run` watches.
func Watched(configured []string) ([]Interface, error) {
	ws, err := candidates(configured)
	if err != nil {
		return nil, err
	}
	return expandBridges(ws)
}

// candidates are the configured interfaces or those of the default routes.
func candidates(configured []string) ([]Interface, error) {
	if len(configured) > 0 {
		ws := make([]Interface, len(configured))
		for i, name := range configured {
			ws[i] = Interface{Name: name, Reason: "configured"}
		}
		return ws, nil
	}
	var ws []Interface
	seen := map[int]int{} // link index → position in ws
	for _, fam := range []struct {
		family int
		name   string
	}{{netlink.FAMILY_V4, "ipv4"}, {netlink.FAMILY_V6, "ipv6"}} {
		routes, err := netlink.RouteListFiltered(fam.family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("netif: list %s routes: %w", fam.name, err)
		}
		for _, r := range routes {
			if !isDefault(r.Dst) {
				continue
			}
			links := []int{r.LinkIndex}
			for _, nh := range r.MultiPath {
				links = append(links, nh.LinkIndex)
			}
			for _, idx := range links {
				if idx == 0 {
					continue
				}
				if i, ok := seen[idx]; ok {
					// Seen before: for IPv4 (this is IPv6), or as another next hop.
					if fam.family == netlink.FAMILY_V6 && ws[i].Reason == "default route (ipv4)" {
						ws[i].Reason = "default route (ipv4, ipv6)"
					}
					continue
				}
				link, err := netlink.LinkByIndex(idx)
				if err != nil {
					return nil, fmt.Errorf("netif: interface %d of the default route: %w", idx, err)
				}
				seen[idx] = len(ws)
				ws = append(ws, Interface{Name: link.Attrs().Name, Reason: "default route (" + fam.name + ")"})
			}
		}
	}
	return ws, nil
}

func isDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0 && dst.IP.IsUnspecified()
}

// LocalOnly reads interface name from the kernel and says why it carries
// no traffic that leaves the node (a loopback, a dummy), or "" when it may.
func LocalOnly(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return "", fmt.Errorf("%q: no such interface: %w", name, err)
	}
	return localOnlyReason(link.Attrs().Flags, link.Type()), nil
}

// CheckTarget refuses a throttle on name unless it is one of the watched
// interfaces and carries traffic that leaves the node: a throttle on the
// loopback slows only local services, and one on an interface the agent
// does not watch could never be judged or released by its detector. The
// error starts with the quoted name and wraps ErrNotTarget (or ErrName, or
// the kernel's lookup error).
func CheckTarget(name string, watched []string) error {
	why, err := LocalOnly(name)
	if err != nil {
		return err
	}
	return checkTarget(name, why, watched)
}

// Indexes returns the ifindex of every interface by name, from one
// rtnetlink dump.
func Indexes() (map[string]int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("netif: list interfaces: %w", err)
	}
	out := make(map[string]int, len(ifs))
	for _, i := range ifs {
		out[i.Name] = i.Index
	}
	return out, nil
}
