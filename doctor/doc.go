// Package doctor checks whether this node can run the egressguard agent and
// says what it would do here: the kernel features a mitigation needs (probed
// in a throwaway network namespace, never assumed), AF_PACKET capture, the
// capabilities held, the interfaces it would watch and their root qdiscs, and
// the SYN-related sysctls, each with advice. `egressguard doctor` prints its
// Report and exits 1 when a check failed.
package doctor
