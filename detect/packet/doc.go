// Package packet walks the headers of one captured frame, without
// allocating and without panicking on any input: link layer (Ethernet with
// any stack of 802.1Q / 802.1ad tags and MPLS labels, Linux cooked captures v1 and v2, raw
// IPv4/IPv6, NFLOG), the IP header (IPv4 options, IPv6 extension headers of
// any chain length: hop-by-hop, routing including the segment routing header,
// fragment, destination options, AH, mobility, HIP, shim6), fragment state,
// and the transport header (TCP ports and flags, UDP ports, ICMP and ICMPv6
// type and code).
//
// Both the live capture (an AF_PACKET ring on an Ethernet interface) and
// `egressguard replay` (pcap files of any of these link types) decode with
// Decode, so a packet counts the same way whichever path it came by.
package packet
