package shaper

import (
	"fmt"
	"strings"
)

// Render returns the ip and tc commands equivalent to the Plan, one per
// line, with the classifier's rules as comments: run in order on an
// interface without our layout they install the objects Apply does (the
// clsact line only where the interface has no clsact qdisc yet).
func (p Plan) Render() string {
	var b strings.Builder
	dev, ifb := p.Spec.Interface, p.Device
	fmt.Fprintf(&b, "# scope %s: classify on %s %s, shape on %s\n", p.Spec.Scope, dev, p.Hook, ifb)
	fmt.Fprintf(&b, "ip link add %s type ifb\n", ifb)
	fmt.Fprintf(&b, "ip link set dev %s alias '%s'\n", ifb, shapingAlias(dev, true))
	fmt.Fprintf(&b, "ip link set dev %s up\n", ifb)
	fmt.Fprintf(&b, "tc qdisc replace dev %s root handle %s %s\n", ifb, p.Root.Handle, p.Root.options())
	c := p.Class
	fmt.Fprintf(&b, "tc class add dev %s parent %s classid %s htb rate %s ceil %s burst %db cburst %db quantum %d\n",
		ifb, c.Parent, c.ClassID, FormatRate(c.Rate), FormatRate(c.Ceil), c.Burst, c.Cburst, c.Quantum)
	fmt.Fprintf(&b, "tc qdisc add dev %s parent %s handle %s %s\n", ifb, p.Leaf.Parent, p.Leaf.Handle, p.Leaf.options())
	fmt.Fprintf(&b, "tc qdisc add dev %s clsact\n", dev)
	fmt.Fprintf(&b, "# classifier rules, first match decides (whitelist: passes unshaped; throttle: to %s):\n", ifb)
	for i, r := range p.Rules {
		fmt.Fprintf(&b, "#  %2d %s\n", i+1, r)
	}
	fmt.Fprintf(&b, "tc filter add dev %s %s prio %d handle 0x%x protocol all bpf bytecode '%s' classid %s action mirred egress redirect dev %s\n",
		dev, p.Hook, FilterPrio, FilterHandle, Bytecode(p.Program), ThrottledClass, ifb)
	return b.String()
}

// options renders the kind and parameters of a qdisc in tc syntax.
func (q Qdisc) options() string {
	switch q.Kind {
	case "htb":
		return fmt.Sprintf("htb default %x", uint32(q.DefaultClass)&0xffff)
	case "sfq":
		return fmt.Sprintf("sfq perturb %d limit %d", q.Perturb, q.Limit)
	case "fq_codel", "bfifo":
		return fmt.Sprintf("%s limit %d", q.Kind, q.Limit)
	}
	return q.Kind
}

// FormatRate writes bits/s in tc's rate notation with the largest unit that
// divides it exactly ("1mbit", "1500kbit", "100gbit", "999bit"), the form
// config.ParseRate reads back and `tc` accepts.
func FormatRate(bits uint64) string {
	for _, u := range []struct {
		div  uint64
		name string
	}{{1_000_000_000_000, "tbit"}, {1_000_000_000, "gbit"}, {1_000_000, "mbit"}, {1_000, "kbit"}} {
		if bits >= u.div && bits%u.div == 0 {
			return fmt.Sprintf("%d%s", bits/u.div, u.name)
		}
	}
	return fmt.Sprintf("%dbit", bits)
}
