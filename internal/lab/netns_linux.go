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
// namespace ns, for an http.Transport. A socket belongs to the namespace it
// was created in, so only its creation runs inside ns: see inNetNS.
func DialContext(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNetNS(ns, func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// inNetNS runs fn on an OS thread that entered namespace ns and is then
// discarded: its goroutine exits locked, so Go ends the thread and no other
// goroutine ever runs in ns. The process's main thread is never used: Go
// cannot end it, and its namespace is what /proc/PID/ns/net (and `ip netns
// pids`) reports for the whole process.
func inNetNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Holding the main thread, the nested call gets another one.
			errc <- inNetNS(ns, fn)
			runtime.UnlockOSThread()
			return
		}
		// No UnlockOSThread from here on: this thread's namespace changes.
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- fmt.Errorf("lab: open netns %s: %w", ns, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("lab: setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// HTTPClient returns an HTTP client whose connections are made inside
// namespace ns (e.g. to the agent's 127.0.0.1:9466 in the node).
func HTTPClient(ns string) *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DialContext: DialContext(ns), MaxIdleConnsPerHost: 2},
	}
}
