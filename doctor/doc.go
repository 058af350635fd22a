// Package doctor checks whether this node can run the egressguard agent and
// says what it would do here: the kernel features a mitigation needs (probed
// by internal/features, which changes nothing, never assumed), AF_PACKET
// capture, the capabilities held, the interfaces it would watch (a bridge
// through its uplink ports; loopback and dummy devices fail) and their root
// qdiscs, and the SYN-related sysctls, each with advice. `egressguard doctor` prints its
// Report and exits 1 when a check failed.
package doctor
