package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// DialContext returns a dial function whose connections are made inside
// namespace ns, for an http.Transport. The socket is created on an OS
// thread locked to a goroutine that enters ns and exits without unlocking,
// so Go discards the thread and no other goroutine ever runs in ns.
func DialContext(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			// No UnlockOSThread: this thread's namespace changed.
			f, err := os.Open("/run/netns/" + ns)
			if err != nil {
				ch <- result{nil, fmt.Errorf("lab: open netns %s: %w", ns, err)}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("lab: setns %s: %w", ns, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// HTTPClient returns an HTTP client whose connections are made inside
// namespace ns (e.g. to the agent's 127.0.0.1:9466 in the node).
func HTTPClient(ns string) *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DialContext: DialContext(ns), DisableKeepAlives: false, MaxIdleConnsPerHost: 2},
	}
}
