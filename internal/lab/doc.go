// Package lab builds the network-namespace lab of docs/design.md §9 for the
// end-to-end tests and the demo: a "node" namespace whose uplink veth up0
// leads to an "inet" namespace that owns 198.18.0.0/15 and 2001:db8:ff::/48
// as local routes, so that every destination the generators pick answers
// inside the lab and nothing leaves it; optionally a bridge br0 in the node
// with "VM" namespaces behind it on ports vnet1, vnet2…, routed by the node
// out of up0.
//
// It also runs things inside the namespaces (commands, background processes
// killed at Close, iperf3 with its JSON parsed, the agent with an HTTP
// client that dials inside the node namespace) and reads the kernel's
// truth: tc class statistics and nftables counters in the inet namespace.
// Every namespace it creates is removed by Close, on failure too. It needs
// root; NewT skips a test otherwise.
package lab
