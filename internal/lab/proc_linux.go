package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Exec runs name with args inside namespace ns and returns its combined
// output; the error carries the output too.
func (l *Lab) Exec(ctx context.Context, ns, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: in %s: %s %s: %w: %s", ns, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Greet makes vm talk to its gateway once (a UDP datagram to the bridge's
// address, port 9 discard), so the node's neighbour table learns the
// address vm's bridge port owns.
func (l *Lab) Greet(ctx context.Context, vm VM) error {
	_, err := l.Exec(ctx, vm.NS, "bash", "-c", "echo hello > /dev/udp/"+BridgeAddr4.String()+"/9")
	return err
}

// Proc is a background process inside a namespace. `ip netns exec` execs
// the command in place, so Pid is the command's own pid and a signal sent
// to it reaches the command.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	out    *syncBuffer // stdout and stderr
	stdout *syncBuffer
	done   chan struct{}
	err    error // set before done closes
}

// Start runs name with args inside namespace ns in the background, its
// stdout and stderr captured together. Close kills it.
func (l *Lab) Start(ns, name string, args ...string) (*Proc, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	buf, stdout := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = io.MultiWriter(buf, stdout), buf
	p := &Proc{Name: name, cmd: cmd, out: buf, stdout: stdout, done: make(chan struct{})}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("lab: start %s: the lab is closed", name)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start %s in %s: %w", name, ns, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is everything the process wrote so far.
func (p *Proc) Output() string { return p.out.String() }

// Stdout is what the process wrote to its standard output so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// WaitReady waits until the process has written word to its standard
// output (the lab's servers and delay line print "ready" once listening),
// and fails when it exits first or limit passes.
func (p *Proc) WaitReady(word string, limit time.Duration) error {
	deadline := time.After(limit)
	for !strings.Contains(p.Stdout(), word) {
		select {
		case <-p.done:
			return fmt.Errorf("lab: %s exited before %q: %s", p.Name, word, p.Output())
		case <-deadline:
			return fmt.Errorf("lab: %s not %q after %s: %s", p.Name, word, limit, p.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Signal sends sig to the process; a process that has exited is not an error.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !strings.Contains(err.Error(), "process already finished") {
		return fmt.Errorf("lab: signal %s to %s: %w", sig, p.Name, err)
	}
	return nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit, at most until ctx ends, and returns
// its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("lab: wait for %s: %w", p.Name, ctx.Err())
	}
}

// Stop sends SIGTERM and waits up to grace for the exit, then kills.
func (p *Proc) Stop(grace time.Duration) error {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("lab: %s ignored SIGTERM for %s; killed", p.Name, grace)
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
