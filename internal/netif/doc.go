// Package netif decides which network interfaces egressguard works on, in
// one place for the agent, the CLI, the webhook and doctor (as
// node_exporter's device_filter.go does for its collectors): the one
// interface-name rule, the discovery of the watched interfaces (configured,
// else those holding a default route), and which interfaces may be
// throttled at all (watched, and carrying traffic that leaves the node).
package netif
