package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egressguard/egressguard/internal/lab"
)

// idleConns is how many idle keep-alive connections the test holds open
// to the agent's listen address: the count that took every file descriptor
// of an agent without limits.
const idleConns = 20_000

// TestIdleConnectionsCannotStarveTheAgent holds issue 14 item 7: with 20,000
// idle keep-alive connections piled on listen, the agent keeps its file
// descriptors bounded, answers a fresh /healthz, serves the CLI socket and
// still detects and throttles a flood. The connections are the test's own,
// on the lab node's loopback, bounded in number and all closed at the end.
func TestIdleConnectionsCannotStarveTheAgent(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.startAgent()
	pid := e.agent.Proc.Pid()
	fdsBefore := countFDs(t, pid)
	rssBefore := rssKiB(t, pid)

	// The test needs a descriptor per connection; the agent, already
	// started, keeps the limit it was given.
	raiseFDLimit(t, 2*idleConns+1024)
	held, answered := holdIdle(t, e.ctx, e.lab.Node, idleConns)
	fdsDuring := countFDs(t, pid)
	rssDuring := rssKiB(t, pid)
	t.Logf("%d connections opened, %d got an answer before idling; agent fds %d -> %d (max %d for HTTP), RSS %d -> %d KiB",
		len(held), answered, fdsBefore, fdsDuring, 512, rssBefore, rssDuring)
	if fdsDuring > fdsBefore+600 {
		t.Errorf("agent holds %d file descriptors under %d idle connections (%d before): want the HTTP connection cap to bound them", fdsDuring, idleConns, fdsBefore)
	}

	// A fresh health check is served while the idle connections are held.
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: lab.DialContext(e.lab.Node), DisableKeepAlives: true}}
	t0 := time.Now()
	resp, err := probe.Get("http://" + lab.AgentListen + "/healthz")
	if err != nil {
		t.Fatalf("/healthz under %d idle connections: %v", idleConns, err)
	}
	resp.Body.Close()
	t.Logf("/healthz answered %d in %s under %d idle connections", resp.StatusCode, time.Since(t0).Round(time.Millisecond), idleConns)
	out := e.cli(0, "status")
	if !strings.Contains(out, "running") {
		t.Errorf("status through the socket under load: %s", out)
	}

	// The detector still sees a flood and the agent throttles it.
	p := e.poll(250 * time.Millisecond)
	start := time.Now()
	fl := e.flood(e.lab.Node, 20*time.Second)
	thr := p.waitFor(t, "throttle", start, 15*time.Second, func(s sample) bool { return s.mitigated })
	t.Logf("flood throttled %.2f s after it started, under %d idle connections", thr.at.Sub(start).Seconds(), idleConns)
	p.Stop()
	fl.Stop(5 * time.Second)
	evicted := e.metricValue("egressguard_http_connections_evicted_total", nil)
	t.Logf("connections evicted to stay within the cap: %.0f; agent fds at the end %d", evicted, countFDs(t, pid))
	for _, c := range held {
		c.Close()
	}
}

// holdIdle opens n connections inside ns to the agent, sends one keep-alive
// /healthz on each, reads the answer if one comes within a few seconds,
// and leaves them open. It returns the connections and how many answered.
func holdIdle(t *testing.T, ctx context.Context, ns string, n int) ([]net.Conn, int) {
	t.Helper()
	dial := lab.DialContext(ns)
	var mu sync.Mutex
	held := make([]net.Conn, 0, n)
	var answered atomic.Int64
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				c, err := dial(ctx, "tcp", lab.AgentListen)
				if err != nil {
					continue
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: agent\r\n\r\n")
				if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
					resp.Body.Close()
					answered.Add(1)
				}
				c.SetDeadline(time.Time{})
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	return held, int(answered.Load())
}

func countFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kib int
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kib)
			return kib
		}
	}
	return 0
}

// raiseFDLimit raises this test process's open-file limit to n (root may
// raise the hard limit too) and restores it at cleanup.
func raiseFDLimit(t *testing.T, n uint64) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if old.Cur >= n {
		return
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: max(n, old.Max)}); err != nil {
		t.Skipf("cannot raise the open-file limit to %d for the client side: %v", n, err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
}
