package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/egressguard/egressguard/agent"
	"github.com/egressguard/egressguard/internal/lab"
	"github.com/egressguard/egressguard/internal/labagent"
)

// idleConns is how many idle keep-alive connections the test holds open
// to the agent's listen address: the count that took every file descriptor
// of an agent without limits.
const idleConns = 20_000

// TestIdleConnectionsCannotStarveTheAgent: with 20,000
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

	// Each holder process needs a descriptor per connection, and the fd
	// limit here is what the agent has: split the connections.
	var holders []*lab.Proc
	held, answered := 0, 0
	for range idleHolders {
		t.Setenv(holdIdleEnv, fmt.Sprint(idleConns/idleHolders))
		h, err := e.lab.Start(e.lab.Node, os.Args[0], "-test.run=^$")
		if err != nil {
			t.Fatal(err)
		}
		holders = append(holders, h)
		t.Cleanup(func() { h.Stop(5 * time.Second) })
	}
	for _, h := range holders {
		n, a := waitHeld(t, e.ctx, h)
		held, answered = held+n, answered+a
	}
	fdsDuring := countFDs(t, pid)
	rssDuring := rssKiB(t, pid)
	t.Logf("%d connections held open, %d got an answer before idling; agent fds %d -> %d (HTTP cap %d), RSS %d -> %d KiB",
		held, answered, fdsBefore, fdsDuring, agent.HTTPMaxConns, rssBefore, rssDuring)
	if held < idleConns*9/10 {
		t.Fatalf("only %d of %d connections opened", held, idleConns)
	}
	if fdsDuring > fdsBefore+agent.HTTPMaxConns+64 {
		t.Errorf("agent holds %d file descriptors under %d idle connections (%d before): want the HTTP connection cap to bound them", fdsDuring, held, fdsBefore)
	}

	// A fresh health check is served while the idle connections are held.
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: lab.DialContext(e.lab.Node), DisableKeepAlives: true}}
	t0 := time.Now()
	resp, err := probe.Get("http://" + labagent.Listen + "/healthz")
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
	for _, h := range holders {
		h.Stop(5 * time.Second)
	}
}

// The holder: the test binary run again inside the lab node with
// holdIdleEnv set to a count (see TestMain).
const (
	holdIdleEnv = "EGRESSGUARD_E2E_HOLD_IDLE"
	idleHolders = 2
	// holdIdleMax bounds a holder's life should the test die without stopping it.
	holdIdleMax = 3 * time.Minute
)

// holdIdle opens n connections to the agent, sends one keep-alive /healthz
// on each and reads the answer if one comes within 3 s, prints
// "held N answered M", and keeps them open until SIGTERM or holdIdleMax.
func holdIdle(n int) int {
	var mu sync.Mutex
	held := make([]net.Conn, 0, n)
	var answered, next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				c, err := net.DialTimeout("tcp", labagent.Listen, 5*time.Second)
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
	fmt.Printf("held %d answered %d\n", len(held), answered.Load())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case <-time.After(holdIdleMax):
	}
	for _, c := range held {
		c.Close()
	}
	return 0
}

// waitHeld waits for a holder's report.
func waitHeld(t *testing.T, ctx context.Context, h *lab.Proc) (held, answered int) {
	t.Helper()
	for {
		if out := h.Stdout(); strings.Contains(out, "answered") {
			if _, err := fmt.Sscanf(out[strings.Index(out, "held"):], "held %d answered %d", &held, &answered); err != nil {
				t.Fatalf("holder report %q: %v", out, err)
			}
			return held, answered
		}
		select {
		case <-h.Done():
			t.Fatalf("holder exited: %s", h.Output())
		case <-ctx.Done():
			t.Fatalf("holder: %v", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
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
