// Package shaper turns a Spec (which traffic to throttle, where) into a Plan
// of kernel objects, renders that Plan as the equivalent ip and tc commands,
// and installs, inspects and removes it over netlink.
//
// The layout never touches the served interface's root qdisc. A classic BPF
// classifier (cls_bpf) on the interface's clsact hook — egress of the uplink
// for scopes node and source, ingress of the VM's bridge port for scope
// port — redirects only the matched packets (act_mirred, egress redirect)
// to a shaping device that holds the HTB layout; what the classifier does
// not match never leaves the interface's own path. The contract tests and
// operators read back with tc and ip:
//
//	link   eg-IFACE       ifb, alias "egressguard shaping device of IFACE" (ShapingDevice)
//	qdisc  e9:            root htb of eg-IFACE, default class e9:10
//	class  e9:10          rate = ceil = Spec.Rate
//	qdisc  e910:          leaf of e9:10: sfq, else fq_codel, else bfifo (a warning),
//	                      bounded to about 100 ms of the class rate in bytes
//	qdisc  clsact         on IFACE, added only when absent
//	filter pref 233 handle 0xe9 protocol all bpf, classid e9:10,
//	                      action mirred egress redirect dev eg-IFACE
//
// The classifier walks 802.1Q/802.1ad tags, the IPv4 header length and IPv6
// extension headers, and holds fragments (see compileClassifier). Its rules,
// first match decides: the whitelist (SSH both ways, whitelist ports both
// ways, whitelist CIDRs as source or destination, DNS to and from the
// node's resolvers) passes unshaped; then the throttle rules (protocols,
// destination port ranges, sources for scope source).
//
// An update replaces the filter in one atomic netlink request, so matched
// packets are classified by a complete program at every instant. Filters of
// others on the same hooks keep their prios, handles and order.
//
// The pure part (Spec, NewPlan, Render, the classifier) runs anywhere; the
// kernel adapter (Open, Apply, Remove, Inspect, Probe) is Linux-only.
package shaper
