package features

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// testNS is a named network namespace of one test.
type testNS struct {
	name string
	fd   int
}

func newNS(t *testing.T) testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root (creates a network namespace)")
	}
	b := make([]byte, 4)
	rand.Read(b)
	name := "egfeat-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return testNS{name: name, fd: int(f.Fd())}
}

func (n testNS) run(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...).CombinedOutput()
	return string(out), err
}

func (n testNS) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := n.run(args...)
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// tcHas is the oracle: can tc itself install the object on the loopback
// of a namespace of its own?
func tcHas(t *testing.T, object, kind string) bool {
	t.Helper()
	ns := newNS(t)
	switch {
	case object == "qdisc":
		_, err := ns.run("tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", kind)
		return err == nil
	case object == "action":
		_, err := ns.run("tc", "actions", "add", "action", kind, "egress", "redirect", "dev", "lo")
		return err == nil
	case object == "link":
		_, err := ns.run("ip", "link", "add", "egfeat-probe", "type", kind)
		return err == nil
	case kind == "bpf":
		ns.must(t, "tc", "qdisc", "add", "dev", "lo", "clsact")
		// A one-instruction classic BPF program: accept the whole packet.
		_, err := ns.run("tc", "filter", "add", "dev", "lo", "ingress", "prio", "1", "protocol", "all", "bpf", "bytecode", "1,6 0 0 4294967295,")
		return err == nil
	}
	ns.must(t, "tc", "qdisc", "add", "dev", "lo", "clsact")
	_, err := ns.run("tc", "filter", "add", "dev", "lo", "ingress", "prio", "1", "protocol", "all", kind, "match", "u32", "0", "0")
	return err == nil
}

// loopbackState is what the probes must leave untouched.
func loopbackState(t *testing.T, ns testNS) string {
	return ns.must(t, "ip", "-d", "link", "show") + ns.must(t, "tc", "qdisc", "show", "dev", "lo") +
		ns.must(t, "tc", "filter", "show", "dev", "lo", "ingress") + ns.must(t, "tc", "actions", "list", "action", "mirred")
}

func TestProbesAgreeWithTCAndLeaveNoTrace(t *testing.T) {
	ns := newNS(t)
	before := loopbackState(t, ns)
	p := Prober{NetNS: ns.fd}
	for _, tt := range []struct {
		object, kind string
		probe        func(string) error
	}{
		{"qdisc", "htb", p.HaveQdisc},
		{"qdisc", "pfifo", p.HaveQdisc},
		{"qdisc", "sfq", p.HaveQdisc},
		{"qdisc", "fq_codel", p.HaveQdisc},
		{"filter", "u32", p.HaveFilter},
		{"filter", "bpf", p.HaveFilter},
		{"action", "mirred", p.HaveAction},
		{"link", "ifb", p.HaveLink},
	} {
		err := tt.probe(tt.kind)
		want := tcHas(t, tt.object, tt.kind)
		t.Logf("%s %s: probe %v, tc has it: %v", tt.object, tt.kind, err, want)
		switch {
		case want && err != nil:
			t.Errorf("%s %s: probe says %v, tc installs it", tt.object, tt.kind, err)
		case !want && !errors.Is(err, ErrNotSupported):
			t.Errorf("%s %s: probe says %v, tc cannot install it", tt.object, tt.kind, err)
		}
	}
	if after := loopbackState(t, ns); after != before {
		t.Errorf("the probes changed the loopback:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// An ingress qdisc someone else put on the loopback is used and kept.
func TestFilterProbeKeepsAForeignIngressQdisc(t *testing.T) {
	ns := newNS(t)
	ns.must(t, "tc", "qdisc", "add", "dev", "lo", "ingress")
	before := loopbackState(t, ns)
	if err := (Prober{NetNS: ns.fd}).HaveFilter("u32"); err != nil && tcHas(t, "filter", "u32") {
		t.Fatalf("HaveFilter(u32) = %v", err)
	}
	if after := loopbackState(t, ns); after != before {
		t.Errorf("the probe changed the loopback:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// With a zero queue length the kernel would reset it (and log); the probe
// refuses instead.
func TestQdiscProbeRefusesZeroQueueLength(t *testing.T) {
	ns := newNS(t)
	ns.must(t, "ip", "link", "set", "lo", "txqueuelen", "0")
	err := (Prober{NetNS: ns.fd}).HaveQdisc("htb")
	if err == nil || errors.Is(err, ErrNotSupported) {
		t.Fatalf("HaveQdisc(htb) with lo qlen 0 = %v, want an inconclusive error", err)
	}
	if out := ns.must(t, "ip", "link", "show", "lo"); !strings.Contains(out, "qlen 0") && strings.Contains(out, "qlen") {
		t.Errorf("queue length changed: %s", out)
	}
}

func TestUnknownKindIsNotProbed(t *testing.T) {
	if err := (Prober{}).HaveQdisc("cake"); err == nil || errors.Is(err, ErrNotSupported) {
		t.Errorf("HaveQdisc(cake) = %v, want 'no probe for this kind'", err)
	}
}

func TestHaveAFPacket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs CAP_NET_RAW")
	}
	if err := HaveAFPacket(); err != nil {
		t.Fatal(err)
	}
}

// The action and link probes tell absence too: act_police is missing from
// some kernels (this lab's among them), and no kernel has a link kind named
// "egfeat-none". Kinds outside the probe lists are let in for the test only.
func TestActionAndLinkProbesSayAbsent(t *testing.T) {
	ns := newNS(t)
	p := Prober{NetNS: ns.fd}
	probeActions["police"], probeLinks["egfeat-none"] = true, true
	t.Cleanup(func() { delete(probeActions, "police"); delete(probeLinks, "egfeat-none") })
	if err := p.HaveLink("egfeat-none"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("HaveLink(egfeat-none) = %v, want not supported", err)
	}
	_, tcErr := ns.run("tc", "actions", "add", "action", "police", "rate", "1mbit", "burst", "10k")
	err := p.HaveAction("police")
	t.Logf("action police: probe %v, tc: %v", err, tcErr)
	switch {
	case tcErr == nil && err != nil:
		t.Errorf("HaveAction(police) = %v, tc installs it", err)
	case tcErr != nil && !errors.Is(err, ErrNotSupported):
		t.Errorf("HaveAction(police) = %v, tc cannot install it", err)
	}
}
