package netif

// Interface is one interface egressguard watches and why.
type Interface struct {
	Name   string
	Reason string // "configured", "default route (ipv4)", "default route (ipv4, ipv6)", "uplink port of bridge …"
	// Bridge is the bridge this interface stands in for (see Watched); ""
	// for an interface watched as itself.
	Bridge string
}

// Names returns the names of ifs, in order.
func Names(ifs []Interface) []string {
	out := make([]string, len(ifs))
	for i, w := range ifs {
		out[i] = w.Name
	}
	return out
}
