package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Timeouts of the agent's HTTP servers (listen and the CLI socket). A client
// gets ReadHeaderTimeout to send its headers and ReadTimeout for the whole
// request (a 1 MiB webhook body is far quicker); WriteTimeout covers the
// answer, kernel actions included; an idle keep-alive connection is closed
// after IdleTimeout. Prometheus scrapes every 15 s or more and reconnects
// at will, so nothing legitimate depends on longer idles.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpWriteTimeout      = 30 * time.Second
	httpIdleTimeout       = 30 * time.Second
)

// HTTPMaxConns bounds the connections the agent holds open on listen, so that
// however many clients connect, the file descriptors the detector needs
// (captures, /proc, netlink) are never starved. Under a low open-file limit
// the bound is lower still (see httpConnLimit).
const HTTPMaxConns = 512

// httpConnLimit is HTTPMaxConns, or half the process's open-file limit when
// that is smaller, so that HTTP can never hold more than half the
// descriptors whatever the limit the service manager sets.
func httpConnLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return HTTPMaxConns
	}
	return max(1, min(HTTPMaxConns, int(r.Cur/2)))
}

// Serve serves h on l until ctx ends, with the timeouts above and at most
// maxConns connections held at once (see connCap). evicted, if not nil,
// counts connections closed to make room.
func Serve(ctx context.Context, l net.Listener, h http.Handler, maxConns int, evicted func()) error {
	capped := newConnCap(l, maxConns, evicted)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		ConnState:         capped.track,
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	if err := srv.Serve(capped); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// connCap is a listener that holds at most max connections open. When a new
// connection arrives at the cap, the connection that has waited longest
// without a request in flight (idle keep-alive, or connected and silent) is
// closed to make room; when every connection is busy, the new one is
// closed. Unlike a listener that stops accepting at the cap, a fresh health
// check is served at once however many idle connections a client piles up,
// and the number of file descriptors stays bounded.
type connCap struct {
	net.Listener
	max     int
	evicted func()

	mu    sync.Mutex
	conns map[net.Conn]connState
}

type connState struct {
	busy  bool
	since time.Time // when it last became idle or new
}

func newConnCap(l net.Listener, max int, evicted func()) *connCap {
	if evicted == nil {
		evicted = func() {}
	}
	return &connCap{Listener: l, max: max, evicted: evicted, conns: map[net.Conn]connState{}}
}

// Accept returns the next connection, making room for it first.
func (c *connCap) Accept() (net.Conn, error) {
	for {
		conn, err := c.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if len(c.conns) >= c.max {
			var victim net.Conn
			var oldest time.Time
			for k, s := range c.conns {
				if !s.busy && (victim == nil || s.since.Before(oldest)) {
					victim, oldest = k, s.since
				}
			}
			if victim == nil {
				c.mu.Unlock()
				conn.Close()
				c.evicted()
				continue
			}
			delete(c.conns, victim)
			victim.Close()
			c.evicted()
		}
		c.conns[conn] = connState{since: time.Now()}
		c.mu.Unlock()
		return conn, nil
	}
}

// track follows the server's view of each connection (http.Server.ConnState).
func (c *connCap) track(conn net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.conns[conn]; !ok {
		return
	}
	switch s {
	case http.StateActive:
		c.conns[conn] = connState{busy: true}
	case http.StateIdle:
		c.conns[conn] = connState{since: time.Now()}
	case http.StateClosed, http.StateHijacked:
		delete(c.conns, conn)
	}
}
