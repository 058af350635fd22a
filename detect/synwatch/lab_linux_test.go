package synwatch

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lab is a "node" namespace whose veth up0 leads to an "internet" namespace
// (peer dn0) that owns the benchmark ranges as local routes and counts, with
// nftables, the SYNs and UDP datagrams it receives: the independent truth.
type lab struct {
	node, inet string
	nodeFD     int
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root for network namespaces and AF_PACKET")
	}
}

func sh(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

const truthRules = `
table inet egc {
	counter syn {}
	counter synack {}
	counter udpin {}
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		tcp flags & (syn | ack) == syn counter name syn
		udp dport { 80, 443 } counter name udpin
	}
	chain out {
		type filter hook output priority -300; policy accept;
		tcp flags & (syn | ack) == syn | ack counter name synack
	}
}
`

func newLab(t testing.TB) *lab {
	requireRoot(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	l := &lab{node: "egc-" + id + "-node", inet: "egc-" + id + "-inet"}
	sh(t, "ip", "netns", "add", l.node)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.node).Run() })
	sh(t, "ip", "netns", "add", l.inet)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.inet).Run() })
	for _, c := range [][]string{
		{"-n", l.node, "link", "add", "up0", "type", "veth", "peer", "name", "dn0", "netns", l.inet},
		{"-n", l.node, "link", "set", "lo", "up"},
		{"-n", l.inet, "link", "set", "lo", "up"},
		{"-n", l.node, "addr", "add", "10.200.0.1/30", "dev", "up0"},
		{"-n", l.inet, "addr", "add", "10.200.0.2/30", "dev", "dn0"},
		{"-n", l.node, "addr", "add", "fd00:e9c::1/64", "dev", "up0", "nodad"},
		{"-n", l.inet, "addr", "add", "fd00:e9c::2/64", "dev", "dn0", "nodad"},
		{"-n", l.node, "link", "set", "up0", "up"},
		{"-n", l.inet, "link", "set", "dn0", "up"},
		{"-n", l.node, "route", "add", "default", "via", "10.200.0.2"},
		{"-n", l.node, "-6", "route", "add", "default", "via", "fd00:e9c::2"},
		{"-n", l.inet, "route", "add", "local", "198.18.0.0/15", "dev", "lo"},
		{"-n", l.inet, "-6", "route", "add", "local", "2001:db8:ff::/48", "dev", "lo"},
	} {
		sh(t, append([]string{"ip"}, c...)...)
	}
	sh(t, "ip", "netns", "exec", l.inet, "sysctl", "-qw", "net.core.somaxconn=8192", "net.ipv4.tcp_max_syn_backlog=8192")
	f := filepath.Join(t.TempDir(), "truth.nft")
	if err := os.WriteFile(f, []byte(truthRules), 0o600); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "netns", "exec", l.inet, "nft", "-f", f)
	fd, err := os.Open("/run/netns/" + l.node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	l.nodeFD = int(fd.Fd())
	return l
}

// truth returns the internet side's counter (syn, synack or udpin) in packets.
func (l *lab) truth(t testing.TB, name string) uint64 {
	t.Helper()
	out := sh(t, "ip", "netns", "exec", l.inet, "nft", "list", "counter", "inet", "egc", name)
	m := regexp.MustCompile(`packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no packets in %q", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
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

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// generator builds the named scripts/ command once per test binary.
func generator(t testing.TB, name string) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "egc-bin-")
		if binErr != nil {
			return
		}
		var out []byte
		cmd := exec.Command("go", "build", "-o", binDir+"/", "../../scripts/synflood", "../../scripts/crawler", "../../scripts/sink")
		out, binErr = cmd.CombinedOutput()
		if binErr != nil {
			binErr = fmt.Errorf("go build generators: %v\n%s", binErr, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
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
