// Package lab builds the network-namespace lab of docs/design.md §9 for the
// end-to-end tests, the demo and every package's kernel tests: a "node"
// namespace whose uplink veth up0 leads to an "inet" namespace that owns
// 198.18.0.0/15 and 2001:db8:ff::/48 as local routes, so that every
// destination the generators pick answers inside the lab and nothing leaves
// it; optionally a bridge br0 in the node with "VM" namespaces behind it on
// ports vnet1, vnet2…, routed by the node out of up0. NewNetNS makes a bare
// namespace for a test that needs nothing more.
//
// It also runs things inside the namespaces (commands, background processes
// killed at Close, iperf3 with its JSON parsed, HTTP clients that dial
// inside a namespace) and reads the kernel's truth: tc class statistics and
// nftables counters in the inet namespace. Every namespace it creates is
// removed by Close, on failure too. It needs root; NewT, NewNetNS and
// SkipUnlessRoot skip a test otherwise.
//
// It imports nothing of egressguard's, so that any package's tests can use
// it; internal/labagent runs the agent in it.
package lab
