package shaper

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	eglab "github.com/egressguard/egressguard/internal/lab"
)

// requireRoot skips kernel tests for unprivileged runs (CI runs as root).
func requireRoot(t testing.TB) {
	t.Helper()
	eglab.SkipUnlessRoot(t)
}

// run runs a command and fails the test when it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nsRun runs a command inside a namespace.
func nsRun(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// newNS creates a namespace egs-<random> that is deleted in t.Cleanup.
func newNS(t testing.TB) string {
	t.Helper()
	return eglab.NewNetNS(t, "egs")
}

// nsFD opens a namespace for Options.NetNS; closed in t.Cleanup.
func nsFD(t testing.TB, ns string) int {
	t.Helper()
	f, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// lab is internal/lab's namespace pair: a "node" whose uplink veth (labDev)
// leads to an "internet" namespace (peer labPeer, address labGateway4) that
// owns 198.18.0.0/15 and 2001:db8:ff::/48.
type lab struct{ node, inet string }

const (
	labDev  = eglab.Uplink
	labPeer = "wan0"
)

var (
	labDst4     = eglab.Dst4.String()
	labDst6     = eglab.Dst6.String()
	labGateway4 = eglab.Gateway4.String()
)

// labSources are the node's own uplink addresses as a source-scope Spec
// names them: its IPv4 address and its IPv6 /64.
func labSources() []netip.Prefix {
	return []netip.Prefix{netip.PrefixFrom(eglab.NodeAddr4, 32), netip.PrefixFrom(eglab.NodeAddr6, 64).Masked()}
}

// newLab builds the lab; queues > 1 makes the uplink a multiqueue veth.
func newLab(t testing.TB, queues int) lab {
	t.Helper()
	l := eglab.NewTWith(t, "egs", eglab.Options{Queues: queues})
	return lab{node: l.Node, inet: l.Inet}
}

// open returns a Shaper in the node namespace.
func (l lab) open(t testing.TB) *Shaper {
	t.Helper()
	s, err := Open(Options{NetNS: nsFD(t, l.node)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tcShow is what iproute2 shows for the uplink: the independent oracle.
func (l lab) tcShow(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, obj := range []string{"qdisc", "class", "filter"} {
		b.WriteString(nsRun(t, l.node, "tc", obj, "show", "dev", labDev))
	}
	return b.String()
}

// hasQdisc reports whether tc can attach kind as a root in a fresh namespace.
func hasQdisc(t testing.TB, kind string) bool {
	t.Helper()
	ns := newNS(t)
	nsRun(t, ns, "ip", "link", "add", "p0", "type", "veth", "peer", "name", "p1")
	return exec.Command("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "p0", "root", "handle", "1:", kind).Run() == nil
}

// tcObjects is the part of `tc qdisc/class/filter show` the Plan fixes.
type tcObjects struct {
	qdiscs  []string // "kind handle parent params"
	classes []string // "classid parent rate ceil"
	filters []string // "protocol prio flowid key key…"
}

var (
	reQdisc  = regexp.MustCompile(`^qdisc (\S+) (\S+) (root|parent \S+)(?: refcnt \d+)?(.*)$`)
	reClass  = regexp.MustCompile(`^class htb (\S+) (root|parent \S+) .*rate (\S+) ceil (\S+) burst`)
	reFilter = regexp.MustCompile(`^filter parent e9: protocol (\S+) pref (\d+) u32 .*\bfh [0-9a-f]+::[0-9a-f]+ .*flowid (\S+)`)
	reKey    = regexp.MustCompile(`^\s+match ([0-9a-f]{8})/([0-9a-f]{8}) at (\d+)$`)
)

// parseTC extracts kinds, handles, class ids, rates and filter matches.
func parseTC(t testing.TB, qdisc, class, filter string) tcObjects {
	t.Helper()
	var o tcObjects
	for _, line := range strings.Split(qdisc, "\n") {
		if m := reQdisc.FindStringSubmatch(line); m != nil {
			params := ""
			switch {
			case strings.Contains(m[4], "default"):
				params = regexp.MustCompile(`default \S+`).FindString(m[4])
			case strings.Contains(m[4], "limit"):
				params = regexp.MustCompile(`limit \S+`).FindString(m[4])
			case strings.Contains(m[4], "perturb"):
				params = regexp.MustCompile(`perturb \S+`).FindString(m[4])
			}
			o.qdiscs = append(o.qdiscs, strings.Join([]string{m[1], m[2], m[3], params}, " "))
		}
	}
	for _, line := range strings.Split(class, "\n") {
		if m := reClass.FindStringSubmatch(line); m != nil {
			o.classes = append(o.classes, fmt.Sprintf("%s %s %d %d", m[1], m[2], parseTCRate(t, m[3]), parseTCRate(t, m[4])))
		}
	}
	for _, line := range strings.Split(filter, "\n") {
		if m := reFilter.FindStringSubmatch(line); m != nil {
			o.filters = append(o.filters, strings.Join(m[1:], " "))
		} else if m := reKey.FindStringSubmatch(line); m != nil && len(o.filters) > 0 {
			o.filters[len(o.filters)-1] += fmt.Sprintf(" %s/%s@%s", m[1], m[2], m[3])
		}
	}
	return o
}

// planObjects is what parseTC must find for a Plan installed in band.
func planObjects(p Plan, band uint16) tcObjects {
	var o tcObjects
	parent := func(h Handle) string {
		if h == HandleRoot || h == RootHandle {
			return "root"
		}
		return "parent " + h.String()
	}
	o.qdiscs = append(o.qdiscs, fmt.Sprintf("htb %s root default 0x%x", p.Root.Handle, uint32(p.Root.DefaultClass)&0xffff))
	for _, q := range p.Leaves {
		params := ""
		switch q.Kind {
		case "pfifo":
			params = fmt.Sprintf("limit %dp", q.Limit)
		case "fq_codel":
			params = fmt.Sprintf("limit %dp", q.Limit)
		case "sfq":
			params = fmt.Sprintf("perturb %dsec", q.Perturb)
		}
		o.qdiscs = append(o.qdiscs, fmt.Sprintf("%s %s %s %s", q.Kind, q.Handle, parent(q.Parent), params))
	}
	for _, c := range p.Classes {
		o.classes = append(o.classes, fmt.Sprintf("%s %s %d %d", c.ClassID, parent(c.Parent), c.Rate, c.Ceil))
	}
	for _, f := range p.Filters {
		line := fmt.Sprintf("%s %d %s", f.Protocol, f.Prio+band*bandOffset, f.FlowID)
		for _, k := range f.keys() {
			line += fmt.Sprintf(" %08x/%08x@%d", k.Val, k.Mask, k.Off)
		}
		o.filters = append(o.filters, line)
	}
	return o
}

// parseTCRate reads tc's "1Mbit", "100Gbit", "500Kbit", "12bit".
func parseTCRate(t testing.TB, s string) uint64 {
	t.Helper()
	mult := map[string]float64{"bit": 1, "Kbit": 1e3, "Mbit": 1e6, "Gbit": 1e9, "Tbit": 1e12}
	for _, unit := range []string{"Kbit", "Mbit", "Gbit", "Tbit", "bit"} {
		if num, ok := strings.CutSuffix(s, unit); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				t.Fatalf("tc rate %q: %v", s, err)
			}
			return uint64(v * mult[unit])
		}
	}
	t.Fatalf("tc rate %q: unknown unit", s)
	return 0
}
