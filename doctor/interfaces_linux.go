package doctor

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/egressguard/egressguard/internal/netif"
)

// watchedInterfaces returns what the agent would watch (internal/netif),
// each with its root qdisc and whether it carries off-node traffic at all.
func watchedInterfaces(configured []string) ([]watched, error) {
	ifs, err := netif.Watched(configured)
	if err != nil {
		return nil, err
	}
	ws := make([]watched, len(ifs))
	for i, w := range ifs {
		ws[i] = watched{Name: w.Name, Reason: w.Reason}
		if ws[i].LocalOnly, ws[i].Err = netif.LocalOnly(w.Name); ws[i].Err == nil {
			ws[i].RootKind, ws[i].RootHandle, ws[i].Err = rootQdisc(w.Name)
		}
	}
	return ws, nil
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
