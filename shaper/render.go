package shaper

import (
	"fmt"
	"strings"
)

// Render returns the tc commands equivalent to the Plan, one per line; run
// in order on an interface whose root is a kernel default they install the
// same objects Apply does (with the filters in band 0).
func (p Plan) Render() string {
	var b strings.Builder
	dev := p.Spec.Interface
	fmt.Fprintf(&b, "tc qdisc replace dev %s root handle %s %s\n", dev, p.Root.Handle, p.Root.options())
	for _, c := range p.Classes {
		fmt.Fprintf(&b, "tc class add dev %s parent %s classid %s htb rate %s ceil %s burst %db cburst %db quantum %d\n",
			dev, c.Parent, c.ClassID, FormatRate(c.Rate), FormatRate(c.Ceil), c.Burst, c.Cburst, c.Quantum)
	}
	for _, q := range p.Leaves {
		fmt.Fprintf(&b, "tc qdisc add dev %s parent %s handle %s %s\n", dev, q.Parent, q.Handle, q.options())
	}
	for _, f := range p.Filters {
		matches := make([]string, len(f.Matches))
		for i, m := range f.Matches {
			matches[i] = m.tc(f.Protocol == "ipv6")
		}
		fmt.Fprintf(&b, "tc filter add dev %s parent %s protocol %s prio %d u32 %s flowid %s\n",
			dev, RootHandle, f.Protocol, f.Prio, strings.Join(matches, " "), f.FlowID)
	}
	return b.String()
}

// options renders the kind and parameters of a qdisc in tc syntax.
func (q Qdisc) options() string {
	switch q.Kind {
	case "htb":
		return fmt.Sprintf("htb default %x", uint32(q.DefaultClass)&0xffff)
	case "sfq":
		return fmt.Sprintf("sfq perturb %d", q.Perturb)
	case "fq_codel", "pfifo":
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
