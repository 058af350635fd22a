package shaper

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func labSpec(rate uint64) Spec {
	return Spec{Interface: labDev, Scope: ScopeNode, Rate: rate, Protocols: []string{"tcp", "udp"}, Ports: Ports(80, 443)}
}

func mustPlan(t testing.TB, s Spec, f Features) Plan {
	t.Helper()
	p, err := NewPlan(s, f)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// foreign is what tc shows of the interface without our objects: the root
// qdisc and its children, and every filter on the clsact hooks except ours.
func (l lab) foreign(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(nsRun(t, l.node, "tc", "qdisc", "show", "dev", labDev), "\n") {
		if !strings.HasPrefix(line, "qdisc clsact ") {
			b.WriteString(line + "\n")
		}
	}
	for _, hook := range []string{"ingress", "egress"} {
		out, _ := tryNS(l.node, "tc", "filter", "show", "dev", labDev, hook)
		ours := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "filter ") {
				ours = strings.Contains(line, " pref 233 ")
			}
			if !ours && strings.TrimSpace(line) != "" {
				b.WriteString(hook + " " + line + "\n")
			}
		}
	}
	return b.String()
}

// tryNS runs a command in a namespace and returns its output and error.
func tryNS(ns string, args ...string) (string, error) {
	out, err := execOutput("ip", append([]string{"netns", "exec", ns}, args...)...)
	return out, err
}

// leftovers fails when anything of ours is still in the node namespace.
func (l lab) assertClean(t testing.TB) {
	t.Helper()
	if out := nsRun(t, l.node, "ip", "-o", "link", "show", "type", "ifb"); strings.TrimSpace(out) != "" {
		t.Errorf("ifb device left behind:\n%s", out)
	}
	if out, _ := tryNS(l.node, "tc", "filter", "show", "dev", labDev, "egress"); strings.Contains(out, "handle 0xe9 ") {
		t.Errorf("classifier left behind:\n%s", out)
	}
}

func TestApplyLayout(t *testing.T) {
	requireRoot(t)
	l := newLab(t, 1)
	s := l.open(t)
	ctx := context.Background()
	p := mustPlan(t, labSpec(1_000_000), Features{})
	rootBefore := nsRun(t, l.node, "tc", "qdisc", "show", "dev", labDev, "root")
	res, err := s.Apply(ctx, p, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Installed || !res.Changed {
		t.Fatalf("Apply = %+v, want a fresh install", res)
	}
	// iproute2 is the oracle: device, alias, htb, class, leaf, classifier.
	link := nsRun(t, l.node, "ip", "-d", "link", "show", "eg-up0")
	for _, want := range []string{"ifb", "alias " + ShapingAlias + labDev + ClsactMark, "UP"} {
		if !strings.Contains(link, want) {
			t.Errorf("ip link show eg-up0 lacks %q:\n%s", want, link)
		}
	}
	q := nsRun(t, l.node, "tc", "qdisc", "show", "dev", "eg-up0")
	for _, want := range []string{"qdisc htb e9: root", "default 0x10", "qdisc bfifo e910: parent e9:10 limit 12500b"} {
		if !strings.Contains(q, want) {
			t.Errorf("tc qdisc show dev eg-up0 lacks %q:\n%s", want, q)
		}
	}
	if c := nsRun(t, l.node, "tc", "class", "show", "dev", "eg-up0"); !strings.Contains(c, "class htb e9:10 root leaf e910: prio 0 rate 1Mbit ceil 1Mbit") {
		t.Errorf("class:\n%s", c)
	}
	f := nsRun(t, l.node, "tc", "filter", "show", "dev", labDev, "egress")
	if !strings.Contains(f, "pref 233 bpf chain 0 handle 0xe9 flowid e9:10") || !strings.Contains(f, "bytecode '"+Bytecode(p.Program)+"'") ||
		!strings.Contains(f, "mirred (Egress Redirect to device eg-up0) stolen") {
		t.Errorf("classifier:\n%s\nwant bytecode %s", f, Bytecode(p.Program))
	}
	if got := nsRun(t, l.node, "tc", "qdisc", "show", "dev", labDev, "root"); got != rootBefore {
		t.Errorf("root qdisc changed:\n%s\nwas\n%s", got, rootBefore)
	}
	in, err := s.Inspect(ctx, labDev)
	if err != nil || !in.Ours || in.Hook != HookEgress || in.Rate != 1_000_000 || in.LeafKind != "bfifo" || in.Device != "eg-up0" {
		t.Fatalf("Inspect = %+v, %v", in, err)
	}
	// Re-applying writes nothing.
	if res, err := s.Apply(ctx, p, ApplyOptions{}); err != nil || res.Changed || res.Installed {
		t.Fatalf("re-Apply = %+v, %v; want no change", res, err)
	}
	if err := s.Remove(ctx, labDev, Previous{}); err != nil {
		t.Fatal(err)
	}
	l.assertClean(t)
	if q := nsRun(t, l.node, "tc", "qdisc", "show", "dev", labDev); strings.Contains(q, "clsact") {
		t.Errorf("clsact left behind:\n%s", q)
	}
}

// TestForeignSetupsUntouched: a foreign root tbf, an mq root whose
// per-queue children an operator set, and foreign clsact filters on both
// hooks read back byte-identical through throttle and release.
func TestForeignSetupsUntouched(t *testing.T) {
	requireRoot(t)
	setups := map[string][][]string{
		"tbf root": {{"tc", "qdisc", "replace", "dev", labDev, "root", "handle", "5:", "tbf", "rate", "50mbit", "burst", "64kb", "latency", "40ms"}},
		"mq with operator children": {
			{"tc", "qdisc", "replace", "dev", labDev, "root", "handle", "1:", "mq"},
			{"tc", "qdisc", "replace", "dev", labDev, "parent", "1:1", "handle", "11:", "tbf", "rate", "20mbit", "burst", "32kb", "latency", "50ms"},
			{"tc", "qdisc", "replace", "dev", labDev, "parent", "1:2", "handle", "12:", "pfifo", "limit", "77"},
		},
		"foreign clsact filters": {
			{"tc", "qdisc", "add", "dev", labDev, "clsact"},
			{"tc", "filter", "add", "dev", labDev, "egress", "prio", "7", "handle", "7", "protocol", "all", "bpf", "bytecode", "1,6 0 0 0,", "classid", "1:7"},
			{"tc", "filter", "add", "dev", labDev, "ingress", "prio", "300", "protocol", "ip", "u32", "match", "ip", "dport", "5000", "0xffff", "classid", "1:3"},
		},
	}
	for name, cmds := range setups {
		t.Run(name, func(t *testing.T) {
			l := newLab(t, 4)
			for _, c := range cmds {
				nsRun(t, l.node, c...)
			}
			before := l.foreign(t)
			s := l.open(t)
			ctx := context.Background()
			_, err := s.Apply(ctx, mustPlan(t, labSpec(1_000_000), Features{}), ApplyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if during := l.foreign(t); during != before {
				t.Errorf("throttled: foreign setup changed\nbefore:\n%s\nduring:\n%s", before, during)
			}
			if err := s.Remove(ctx, labDev, Previous{}); err != nil {
				t.Fatal(err)
			}
			if after := l.foreign(t); after != before {
				t.Errorf("released: foreign setup changed\nbefore:\n%s\nafter:\n%s", before, after)
			}
			l.assertClean(t)
			t.Logf("byte-identical through throttle and release:\n%s", before)
		})
	}
}

func TestApplyRefusesForeignAtOurPrio(t *testing.T) {
	requireRoot(t)
	l := newLab(t, 1)
	nsRun(t, l.node, "tc", "qdisc", "add", "dev", labDev, "clsact")
	nsRun(t, l.node, "tc", "filter", "add", "dev", labDev, "egress", "prio", "233", "protocol", "ip", "u32", "match", "ip", "dport", "5000", "0xffff", "classid", "1:3")
	before := l.foreign(t)
	_, err := l.open(t).Apply(context.Background(), mustPlan(t, labSpec(1_000_000), Features{}), ApplyOptions{})
	if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), "u32 filter holds prio 233") {
		t.Fatalf("Apply = %v, want ErrForeign naming the u32 filter", err)
	}
	if after := l.foreign(t); after != before {
		t.Errorf("refused Apply changed the interface:\n%s\nwas\n%s", after, before)
	}
	l.assertClean(t)
}

// TestApplyAllOrNothing makes every kernel write of an install, and of an
// update, fail in turn: each failure leaves the interface as it was.
func TestApplyAllOrNothing(t *testing.T) {
	requireRoot(t)
	l := newLab(t, 1)
	ctx := context.Background()
	first := mustPlan(t, labSpec(1_000_000), Features{})
	second := labSpec(2_000_000)
	second.Protocols, second.Ports = []string{"udp"}, nil
	next := mustPlan(t, second, Features{})

	state := func() string {
		var b strings.Builder
		b.WriteString(l.foreign(t))
		b.WriteString(nsRun(t, l.node, "tc", "filter", "show", "dev", labDev, "egress"))
		b.WriteString(nsRun(t, l.node, "ip", "-o", "link", "show", "type", "ifb"))
		if strings.Contains(b.String(), "eg-up0") {
			for _, obj := range []string{"qdisc", "class"} {
				b.WriteString(nsRun(t, l.node, "tc", obj, "show", "dev", "eg-up0"))
			}
		}
		return regexp.MustCompile(`(?m)^\d+: `).ReplaceAllString(b.String(), "")
	}
	for _, tc := range []struct {
		name  string
		setup *Plan
		apply Plan
	}{{"install", nil, first}, {"update", &first, next}} {
		for failAt := 1; ; failAt++ {
			s := l.open(t)
			if tc.setup != nil {
				if _, err := s.Apply(ctx, *tc.setup, ApplyOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			before := state()
			s.writes, s.failAt = 0, failAt
			_, err := s.Apply(ctx, tc.apply, ApplyOptions{})
			s.failAt = 0
			if err == nil {
				if failAt == 1 {
					t.Fatalf("%s: no kernel write", tc.name)
				}
				t.Logf("%s: %d writes, each made to fail in turn", tc.name, failAt-1)
				if err := s.Remove(ctx, labDev, Previous{}); err != nil {
					t.Fatal(err)
				}
				break
			}
			if !errors.Is(err, errInjected) {
				t.Fatalf("%s, write %d: %v", tc.name, failAt, err)
			}
			if after := state(); after != before {
				t.Fatalf("%s, write %d failed and left\n%s\nwas\n%s", tc.name, failAt, after, before)
			}
			if tc.setup != nil {
				if err := s.Remove(ctx, labDev, Previous{}); err != nil {
					t.Fatal(err)
				}
			}
			l.assertClean(t)
		}
	}
}

// TestCrashAtEveryWrite stops an install, an update and a removal at each
// of their kernel writes without undoing anything, as a kill -9 there would;
// a new Shaper then repairs: Apply completes the layout exactly as an
// uninterrupted install makes it, and Remove leaves nothing, the clsact
// qdisc included (the shaping device's alias says it was ours).
func TestCrashAtEveryWrite(t *testing.T) {
	requireRoot(t)
	l := newLab(t, 1)
	ctx := context.Background()
	first := mustPlan(t, labSpec(1_000_000), Features{})
	second := labSpec(3_000_000)
	second.Protocols, second.Ports = []string{"udp", "icmp"}, nil
	next := mustPlan(t, second, Features{})
	view := func() string {
		out := nsRun(t, l.node, "ip", "-d", "link", "show", "eg-up0") + nsRun(t, l.node, "tc", "qdisc", "show", "dev", labDev) +
			nsRun(t, l.node, "tc", "filter", "show", "dev", labDev, "egress")
		for _, obj := range []string{"qdisc", "class"} {
			out += nsRun(t, l.node, "tc", obj, "show", "dev", "eg-up0")
		}
		return regexp.MustCompile(`(?m)^\d+: |link/ether \S+|ifindex \d+|numtxqueues.*$|direct_packets_stat \d+|index \d+ `).ReplaceAllString(out, "")
	}
	// The layouts an uninterrupted install of each Plan makes.
	clean := l.open(t)
	want := map[*Plan]string{}
	for _, p := range []*Plan{&first, &next} {
		if _, err := clean.Apply(ctx, *p, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		want[p] = view()
		if err := clean.Remove(ctx, labDev, Previous{}); err != nil {
			t.Fatal(err)
		}
		l.assertClean(t)
	}
	assertNothing := func(what string) {
		t.Helper()
		l.assertClean(t)
		if q := nsRun(t, l.node, "tc", "qdisc", "show", "dev", labDev); strings.Contains(q, "clsact") {
			t.Fatalf("%s: clsact left behind:\n%s", what, q)
		}
	}
	for _, c := range []struct {
		name        string
		setup, plan *Plan
	}{{"install", nil, &first}, {"update", &first, &next}} {
		for n := 1; ; n++ {
			s := l.open(t)
			if c.setup != nil {
				if _, err := s.Apply(ctx, *c.setup, ApplyOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			s.writes, s.failAt, s.crash = 0, n, true
			_, err := s.Apply(ctx, *c.plan, ApplyOptions{})
			s.failAt = 0
			if err == nil {
				t.Logf("%s: crashed at each of %d writes, repaired each time", c.name, n-1)
				if err := s.Remove(ctx, labDev, Previous{}); err != nil {
					t.Fatal(err)
				}
				break
			}
			// The next start repairs: the same Apply completes the layout.
			if _, err := l.open(t).Apply(ctx, *c.plan, ApplyOptions{}); err != nil {
				t.Fatalf("%s, crash at write %d: repair: %v", c.name, n, err)
			}
			if got := view(); got != want[c.plan] {
				t.Fatalf("%s, crash at write %d: repaired layout\n%s\nwant\n%s", c.name, n, got, want[c.plan])
			}
			// A crash at that point followed by a release leaves nothing.
			if err := l.open(t).Remove(ctx, labDev, Previous{}); err != nil {
				t.Fatal(err)
			}
			assertNothing(c.name)
		}
	}
	// A removal stopped at each of its writes is finished by the next one.
	for n := 1; ; n++ {
		s := l.open(t)
		if _, err := s.Apply(ctx, first, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		s.writes, s.failAt, s.crash = 0, n, true
		if err := s.Remove(ctx, labDev, Previous{}); err == nil {
			t.Logf("remove: crashed at each of %d writes, finished each time", n-1)
			break
		}
		if err := l.open(t).Remove(ctx, labDev, Previous{}); err != nil {
			t.Fatalf("remove, crash at write %d: second remove: %v", n, err)
		}
		assertNothing("remove")
	}
}

// TestShapingDeviceIsNoTarget: the shaping device holds an htb e9: root like
// the legacy layout, but Inspect does not count it as a throttled interface
// (the agent would otherwise "clean" it) and Apply and Remove refuse or
// skip it.
func TestShapingDeviceIsNoTarget(t *testing.T) {
	requireRoot(t)
	l := newLab(t, 1)
	s := l.open(t)
	ctx := context.Background()
	if _, err := s.Apply(ctx, mustPlan(t, labSpec(1_000_000), Features{}), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	dev := ShapingDevice(labDev)
	in, err := s.Inspect(ctx, dev)
	if err != nil || in.Ours || in.Legacy {
		t.Fatalf("Inspect(%s) = %+v, %v; want not ours", dev, in, err)
	}
	spec := labSpec(1_000_000)
	spec.Interface = dev
	if _, err := s.Apply(ctx, mustPlan(t, spec, Features{}), ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "shaping device") {
		t.Fatalf("Apply on the shaping device = %v, want a refusal", err)
	}
	if err := s.Remove(ctx, dev, Previous{}); err != nil {
		t.Fatal(err)
	}
	if q := nsRun(t, l.node, "tc", "qdisc", "show", "dev", dev); !strings.Contains(q, "qdisc htb e9: root") {
		t.Fatalf("Remove on the shaping device touched it:\n%s", q)
	}
	if err := s.Remove(ctx, labDev, Previous{}); err != nil {
		t.Fatal(err)
	}
	l.assertClean(t)
}

// TestRemoveAfterInterfaceGone: the shaping device outlives a deleted
// interface; Remove of the gone interface deletes it, and a second Remove
// finds nothing to do.
func TestRemoveAfterInterfaceGone(t *testing.T) {
	requireRoot(t)
	l := newLab(t, 1)
	s := l.open(t)
	ctx := context.Background()
	if _, err := s.Apply(ctx, mustPlan(t, labSpec(1_000_000), Features{}), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	nsRun(t, l.node, "ip", "link", "del", labDev)
	if out := nsRun(t, l.node, "ip", "-o", "link", "show", "type", "ifb"); !strings.Contains(out, ShapingDevice(labDev)) {
		t.Fatalf("the shaping device went with the interface:\n%s", out)
	}
	for range 2 {
		if err := s.Remove(ctx, labDev, Previous{}); err != nil {
			t.Fatal(err)
		}
	}
	l.assertClean(t)
}
