package doctor

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Watched names the interfaces the agent watches: the configured ones or,
// when none are, those holding a default route. The agent and doctor share
// it so that doctor reports on exactly what `run` would watch.
func Watched(configured []string) ([]string, error) {
	if len(configured) > 0 {
		return configured, nil
	}
	ws, err := defaultRouteInterfaces()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.Name
	}
	return names, nil
}

// watchedInterfaces returns the configured interfaces or, when none are,
// those holding a default route, each with its root qdisc.
func watchedInterfaces(configured []string) ([]watched, error) {
	var ws []watched
	if len(configured) > 0 {
		for _, name := range configured {
			ws = append(ws, watched{Name: name, Reason: "configured"})
		}
	} else {
		var err error
		if ws, err = defaultRouteInterfaces(); err != nil {
			return nil, err
		}
	}
	for i := range ws {
		ws[i].RootKind, ws[i].RootHandle, ws[i].Err = rootQdisc(ws[i].Name)
	}
	return ws, nil
}

// defaultRouteInterfaces lists the interfaces that hold a default route in
// the main table, IPv4 then IPv6, multipath next hops included.
func defaultRouteInterfaces() ([]watched, error) {
	var ws []watched
	seen := map[int]int{} // link index → position in ws
	for _, fam := range []struct {
		family int
		name   string
	}{{netlink.FAMILY_V4, "ipv4"}, {netlink.FAMILY_V6, "ipv6"}} {
		routes, err := netlink.RouteListFiltered(fam.family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("doctor: list %s routes: %w", fam.name, err)
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
					return nil, fmt.Errorf("doctor: interface %d of the default route: %w", idx, err)
				}
				seen[idx] = len(ws)
				ws = append(ws, watched{Name: link.Attrs().Name, Reason: "default route (" + fam.name + ")"})
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

// rootQdisc returns the kind and handle of an interface's root qdisc.
func rootQdisc(name string) (string, uint32, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return "", 0, fmt.Errorf("doctor: interface %s: %w", name, err)
	}
	qdiscs, err := netlink.QdiscList(link)
	if err != nil {
		return "", 0, fmt.Errorf("doctor: qdiscs of %s: %w", name, err)
	}
	for _, q := range qdiscs {
		if a := q.Attrs(); a.Parent == netlink.HANDLE_ROOT {
			return q.Type(), a.Handle, nil
		}
	}
	return "", 0, nil
}
