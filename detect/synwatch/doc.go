// Package synwatch counts, per interface and interval, the packets the flood
// detector needs: outbound TCP SYNs, inbound SYN-ACKs, outbound RSTs and UDP
// to or from the throttled ports, with fan-out, top destination ports, top
// sources (and their MACs) and a few sample destinations; and it feeds every
// decoded packet to the per-key accounting (detect/account), whose keys
// (sources, VM bridge ports, the interface) detect.KeyDetector judges every
// detect.tick.
//
// Capture is an AF_PACKET socket with a TPACKET_V3 ring (no per-packet
// syscalls) and a classic BPF filter that passes handshake, reset and close
// segments, every UDP and ICMP packet and 1 in DataEvery of the rest,
// truncated to their headers, and samples them 1 in N in the kernel (N adapts
// so user space sees at most Options.MaxSampleRate packets per second).
// Counts are scaled back up. The socket is bound to the uplink, or with
// Options.BridgePorts to every interface of the namespace: a frame arriving
// on a VM's bridge port is that VM's outbound traffic, keyed by the port and
// checked against the addresses the port owns (neighbour and FDB tables).
// Watcher.Collect returns the interval's detect.Counts, with the keys that
// are not clean, and starts a new window.
package synwatch
