package anonns

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// New creates an anonymous network namespace without moving this process
// into it: the creating thread switches in and straight back before it is
// released, and is retired with its goroutine if switching back fails. The
// caller closes the handle.
func New() (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), fmt.Errorf("create network namespace: %w", err)
	}
	if err := netns.Set(orig); err != nil {
		ns.Close()
		// Left locked: Go retires a thread whose goroutine exits locked.
		return netns.None(), fmt.Errorf("return from the new network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ns, nil
}
