package netif

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkEvent is what the kernel announced about one interface: it exists
// (new, changed or renamed: RTM_NEWLINK) or it is gone (RTM_DELLINK).
type LinkEvent struct {
	Index int
	Name  string
	Gone  bool
}

// WatchLinks follows the interfaces of this network namespace (rtnetlink
// group RTNLGRP_LINK) until ctx ends: it first sends every existing
// interface, then each change. When the subscription fails (the socket's
// buffer overran, so events were lost) it subscribes again, lists every
// interface again, and reports the failure to onErr; the consumer is never
// left with a stale view. The channel closes when ctx ends.
func WatchLinks(ctx context.Context, onErr func(error)) <-chan LinkEvent {
	out := make(chan LinkEvent, 64)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			if err := followLinks(ctx, out); err != nil {
				onErr(err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return out
}

// followLinks runs one subscription until it ends or ctx does.
func followLinks(ctx context.Context, out chan<- LinkEvent) error {
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	var subErr error
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ListExisting:  true,
		ErrorCallback: func(err error) { subErr = err },
	})
	if err != nil {
		return fmt.Errorf("netif: subscribe to link events: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				if subErr == nil {
					subErr = fmt.Errorf("subscription closed")
				}
				return fmt.Errorf("netif: link events: %w", subErr)
			}
			ev := LinkEvent{Index: int(u.Index), Name: u.Attrs().Name, Gone: u.Header.Type == unix.RTM_DELLINK}
			select {
			case out <- ev:
			case <-ctx.Done():
				return nil
			}
		}
	}
}
