// Package shaper turns a Spec (which egress traffic to throttle on one
// interface) into a Plan of tc objects, renders that Plan as the equivalent
// tc commands, and installs, inspects and removes it over netlink.
//
// The layout is a contract that tests and operators read back with tc:
//
//	qdisc  e9:     root htb, default class e9:20 ("e9" marks the root as ours)
//	class  e9:1    parent, rate = ceil = link rate (100gbit when unknown)
//	class  e9:10   "throttled", rate = ceil = Spec.Rate
//	class  e9:20   "other" (default), rate = ceil = link rate
//	qdisc  e910:   leaf of e9:10 (sfq perturb 10, else fq_codel, else pfifo)
//	qdisc  e920:   leaf of e9:20 (same kind)
//	filter prio 10 protocol ip    u32 whitelist → e9:20
//	filter prio 11 protocol ipv6  u32 whitelist → e9:20
//	filter prio 12 protocol ip    u32 throttled ports → e9:10
//	filter prio 13 protocol ipv6  u32 throttled ports → e9:10
//
// Filters live in one of two prio bands (10–13 or 20–23). An update installs
// the new filters in the free band before deleting the old band, so the
// throttled ports are classified by a complete rule set at every instant.
//
// Ports are matched at the fixed offsets of iproute2's `match ip dport`
// (an IPv4 header of 20 bytes, ihl=5) and `match ip6 dport` (no extension
// headers). u32 can follow the IPv4 header length only through a linked
// hash table (`offset at 0 mask 0x0f00 shift 6 link`), which doubles the
// filter count; packets with IP options are rare, and a packet that does
// not match falls to the unthrottled default, never to a wrong class.
//
// The pure part (Spec, NewPlan, Render) runs anywhere; the kernel adapter
// (Open, Apply, Remove, Inspect, Probe) is Linux-only.
package shaper
