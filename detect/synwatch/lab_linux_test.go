package synwatch

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	eglab "github.com/egressguard/egressguard/internal/lab"
)

// lab is internal/lab's namespace pair: a "node" whose veth up0 leads to an
// "internet" namespace (peer wan0) that owns the benchmark ranges as local
// routes and counts, with nftables, what it receives: the independent truth.
type lab struct {
	*eglab.Lab
	node, inet string
	nodeFD     int
}

func requireRoot(t testing.TB) {
	t.Helper()
	eglab.SkipUnlessRoot(t)
}

func sh(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLab(t testing.TB) *lab {
	l := eglab.NewT(t, "egc", 0)
	if err := l.InstallTruth(context.Background()); err != nil {
		t.Fatal(err)
	}
	return wrapLab(t, l)
}

// wrapLab gives the tests' view of l: its node namespace open for the
// watcher, closed at the test's end.
func wrapLab(t testing.TB, l *eglab.Lab) *lab {
	fd, err := os.Open("/run/netns/" + l.Node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	return &lab{Lab: l, node: l.Node, inet: l.Inet, nodeFD: int(fd.Fd())}
}

// truth returns an internet-side counter (eglab.TruthSyn, TruthSynAck,
// TruthUDP) in packets.
func (l *lab) truth(t testing.TB, name string) uint64 {
	t.Helper()
	n, _, err := l.Truth(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// watch opens a Watcher on the node's up0 and runs it until the test ends.
func (l *lab) watch(t testing.TB, o Options) *Watcher {
	t.Helper()
	if o.Interface == "" {
		o.Interface = "up0"
	}
	o.NetNS = l.nodeFD
	w, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		w.Close()
	})
	return w
}

// settle gives the ring time to hand over its last partly filled block.
func settle() { time.Sleep(4 * blockTimeoutMs * time.Millisecond) }

// generator returns the named scripts/ command, built once per test binary.
func generator(t testing.TB, name string) string {
	t.Helper()
	tools, err := eglab.BuildTools()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"synflood": tools.Synflood, "crawler": tools.Crawler, "sink": tools.Sink, "delayline": tools.Delayline}[name]
}

func TestMain(m *testing.M) {
	code := m.Run()
	eglab.RemoveTools()
	os.Exit(code)
}

// run runs a generator in namespace ns and returns its final "k=v ..." line.
func (l *lab) run(t testing.TB, ns, name string, args ...string) map[string]float64 {
	t.Helper()
	out := sh(t, append([]string{"ip", "netns", "exec", ns, generator(t, name)}, args...)...)
	res := map[string]float64{}
	for _, f := range strings.Fields(out) {
		k, v, ok := strings.Cut(f, "=")
		if ok {
			res[k], _ = strconv.ParseFloat(v, 64)
		}
	}
	t.Logf("%s %v: %s", name, args, strings.TrimSpace(out))
	return res
}

// startSink runs the accept-and-close server in the internet namespace.
func (l *lab) startSink(t testing.TB) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", l.inet, generator(t, "sink"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); strings.TrimSpace(line) != "ready" {
		t.Fatalf("sink: %q", line)
	}
}
