package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// agentLockName is the file an agent holds locked for its whole life.
const agentLockName = "agent.lock"

// ErrHeld is returned by HoldForAgent when another agent holds the state
// directory.
var ErrHeld = errors.New("state directory held by another agent")

// HoldForAgent takes the state directory for this agent's lifetime: an
// exclusive, non-blocking lock on agent.lock, which then holds our pid. A
// second agent gets an error wrapping ErrHeld that names the holder's pid,
// before it has touched the kernel or the state file. The kernel drops the
// lock when the process dies. It is a different file from Lock's, so the
// agent's own state writes and a CLI acting directly still serialise on Lock.
func (s *Store) HoldForAgent() (release func(), err error) {
	path := filepath.Join(s.dir, agentLockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := string(bytes.TrimSpace(b[:n]))
			if holder == "" {
				holder = "unknown"
			}
			return nil, fmt.Errorf("state: %s is held by the agent with pid %s: %w", s.dir, holder, ErrHeld)
		}
		return nil, fmt.Errorf("state: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		f.Truncate(0)
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// Lock takes the store's exclusive lock, waiting for another holder (the
// agent, or a concurrent CLI call) to finish. The kernel drops the lock when
// the process dies, so a crash never leaves it stuck.
func (s *Store) Lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: open lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("state: lock %s: %w", f.Name(), err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
