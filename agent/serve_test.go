package agent

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestConnCapEvictsTheLongestIdle: with the cap reached by idle clients, a
// new client is still served, the connections held stay at the cap, and
// every eviction is counted.
func TestConnCapEvictsTheLongestIdle(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const max = 4
	var evicted atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	go func() { done <- Serve(ctx, l, h, max, func() { evicted.Add(1) }) }()
	t.Cleanup(func() { cancel(); <-done })

	var idle []net.Conn
	for range 3 * max {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		t.Cleanup(func() { c.Close() })
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + l.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("a fresh request with %d idle connections and a cap of %d: %v", len(idle), max, err)
	}
	resp.Body.Close()
	// Every idle connection past the cap was closed by the server: reading
	// from it ends.
	closed := 0
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				closed++
			}
		}
	}
	if closed < len(idle)-max+1 || evicted.Load() < int64(closed) {
		t.Fatalf("%d of %d idle connections closed, %d evictions counted; want at least %d closed, each counted", closed, len(idle), evicted.Load(), len(idle)-max+1)
	}
}

func TestHTTPConnLimitStaysUnderHalfTheFDLimit(t *testing.T) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	n := httpConnLimit()
	if n < 1 || n > HTTPMaxConns || (r.Cur < 1<<30 && uint64(n) > r.Cur/2+1) {
		t.Fatalf("httpConnLimit() = %d with an open-file limit of %d", n, r.Cur)
	}
}
