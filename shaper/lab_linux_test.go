package shaper

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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
// leads to an "internet" namespace that owns 198.18.0.0/15 and
// 2001:db8:ff::/48.
type lab struct{ node, inet string }

const labDev = eglab.Uplink

var (
	labDst4 = eglab.Dst4.String()
	labDst6 = eglab.Dst6.String()
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

// execOutput runs a command and returns its combined output.
func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
