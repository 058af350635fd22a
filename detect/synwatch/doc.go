// Package synwatch counts, per interface and interval, the packets the flood
// detector needs: outbound TCP SYNs, inbound SYN-ACKs, outbound RSTs and UDP
// to or from the throttled ports, with fan-out, top destination ports, top
// sources (and their MACs) and a few sample destinations.
//
// Capture is an AF_PACKET socket bound to one interface with a TPACKET_V3
// ring (no per-packet syscalls) and a classic BPF filter that passes only
// those packets, truncated to their headers, and samples them 1 in N in the
// kernel (N adapts so user space sees at most Options.MaxSampleRate packets
// per second). Counts are scaled back up by N; Watcher.Collect returns them
// as a detect.Counts and starts a new window.
package synwatch
