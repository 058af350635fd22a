package doctor

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/egressguard/egressguard/internal/anonns"
)

// classify turns a probe's error into its outcome: the kernel answers
// ENOENT for a qdisc or filter kind it does not know (and cannot load), and
// EAFNOSUPPORT for a socket family it lacks.
func classify(err error) probeResult {
	switch {
	case err == nil:
		return probeResult{featurePresent, nil}
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EAFNOSUPPORT), errors.Is(err, unix.EOPNOTSUPP):
		return probeResult{featureAbsent, err}
	default:
		return probeResult{featureUnknown, err}
	}
}

// probeAFPacket opens (and closes) a packet socket; it binds nothing and
// sees no traffic.
func probeAFPacket() probeResult {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return classify(fmt.Errorf("doctor: open AF_PACKET socket: %w", err))
	}
	unix.Close(fd)
	return probeResult{featurePresent, nil}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// probeQdiscs installs an htb root qdisc with one class and a u32 filter on
// the loopback of a throwaway network namespace. The namespace is anonymous:
// the kernel frees it when the last handle closes, even if this process dies
// midway, so nothing is ever left behind.
func probeQdiscs() (htb, u32 probeResult) {
	ns, err := anonns.New()
	if err != nil {
		r := probeResult{featureUnknown, fmt.Errorf("doctor: probe namespace: %w", err)}
		return r, r
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		r := probeResult{featureUnknown, fmt.Errorf("doctor: netlink in the probe namespace: %w", err)}
		return r, r
	}
	defer h.Close()

	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		r := probeResult{featureUnknown, fmt.Errorf("doctor: loopback of the probe namespace: %w", err)}
		return r, r
	}
	idx := lo.Attrs().Index
	root := netlink.MakeHandle(1, 0)
	class := netlink.MakeHandle(1, 1)

	err = h.QdiscAdd(netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Handle: root, Parent: netlink.HANDLE_ROOT}))
	if err == nil {
		err = h.ClassAdd(netlink.NewHtbClass(
			netlink.ClassAttrs{LinkIndex: idx, Parent: root, Handle: class},
			netlink.HtbClassAttrs{Rate: 1_000_000, Ceil: 1_000_000, Buffer: 1600, Cbuffer: 1600},
		))
	}
	htb = classify(wrap("add htb qdisc and class", err))
	if htb.outcome != featurePresent {
		return htb, probeResult{featureUnknown, errors.New("needs sch_htb to attach to")}
	}

	// dport 80 for IPv4, as the shaper's filters match.
	err = h.FilterAdd(&netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: root, Priority: 1, Protocol: unix.ETH_P_IP},
		ClassId:     class,
		Sel: &netlink.TcU32Sel{
			Flags: netlink.TC_U32_TERMINAL,
			Keys:  []netlink.TcU32Key{{Mask: 0x0000ffff, Val: 80, Off: 20}},
		},
	})
	return htb, classify(wrap("add u32 filter", err))
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("doctor: %s in the probe namespace: %w", op, err)
}

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
