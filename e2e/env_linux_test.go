package e2e

import (
	"bufio"
	"context"
	"github.com/egressguard/egressguard/shaper"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/internal/lab"
	"github.com/egressguard/egressguard/internal/labagent"
)

// unitFile is the packaged systemd unit, whose capability set the agent
// gets in every test.
const unitFile = "../packaging/egressguard.service"

// readyLimit bounds the wait for a lab server to say it listens; generous,
// as a loaded CI machine may start it slowly.
const readyLimit = 30 * time.Second

// env is one test's lab, built tools and agent.
type env struct {
	t     *testing.T
	ctx   context.Context
	lab   *lab.Lab
	tools lab.Tools
	dir   string
	agent *labagent.Agent
}

// newEnv builds a lab with vms VMs behind the bridge and an agent (not
// started) whose config is labagent.Config changed by edit.
func newEnv(t *testing.T, vms int, edit func(*config.Config)) *env {
	t.Helper()
	return newEnvWith(t, lab.Options{VMs: vms}, edit)
}

// newEnvWith is newEnv on a lab shaped by o (its prefix is chosen here).
func newEnvWith(t *testing.T, o lab.Options, edit func(*config.Config)) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end test: needs root for network namespaces, tc and raw sockets")
	}
	tools, err := lab.BuildTools()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	// The directory first: cleanups run last-in first-out, so it is removed
	// only after the lab has ended the agent that writes into it.
	dir := t.TempDir()
	e := &env{t: t, ctx: ctx, lab: lab.NewTWith(t, "egl", o), tools: tools, dir: dir}
	cfg := labagent.Config(e.dir)
	if edit != nil {
		edit(&cfg)
	}
	e.agent, err = labagent.New(e.lab, tools.Egressguard, e.dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The agent runs with exactly the packaged unit's capabilities and
	// under its system call filter, so a feature that needs more fails here
	// first.
	e.agent.Capabilities, e.agent.SyscallFilter, err = labagent.UnitConfinement(unitFile, tools.SyscallFilter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && e.agent.Proc != nil {
			t.Logf("agent log:\n%s", tail(e.agent.Proc.Output(), 60))
		}
	})
	return e
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (e *env) startAgent() {
	e.t.Helper()
	if err := e.agent.Start(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// cli runs the egressguard CLI in the node and wants exit code want.
func (e *env) cli(want int, args ...string) string {
	e.t.Helper()
	out, code, err := e.agent.CLI(e.ctx, args...)
	if err != nil || code != want {
		e.t.Fatalf("egressguard %s: exit %d (want %d), %v\n%s", strings.Join(args, " "), code, want, err, out)
	}
	return out
}

// flood runs the synflood generator at full speed in namespace ns for d.
func (e *env) flood(ns string, d time.Duration, args ...string) *lab.Proc {
	e.t.Helper()
	p, err := e.lab.Start(ns, e.tools.Synflood, append([]string{"-duration", d.String()}, args...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// status reads the agent's status or fails the test.
func (e *env) status() control.Status {
	e.t.Helper()
	st, err := e.agent.Status(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// layout reads up0's tc layout in the node.
func (e *env) layout() lab.Layout {
	e.t.Helper()
	exec := func(name string, args ...string) string {
		out, err := e.lab.Exec(e.ctx, e.lab.Node, name, args...)
		if err != nil {
			e.t.Fatal(err)
		}
		return out
	}
	// The throttle lives on up0's clsact hook and on its shaping device; the
	// root of up0 itself is never ours.
	qdiscs := exec("tc", "qdisc", "show", "dev", lab.Uplink)
	filters, _ := e.lab.Exec(e.ctx, e.lab.Node, "tc", "filter", "show", "dev", lab.Uplink, "egress")
	l := lab.ParseLayout(qdiscs, "", filters)
	l.Qdiscs = strings.Count(qdiscs, "qdisc clsact ")
	dev := shaper.ShapingDevice(lab.Uplink)
	if _, err := e.lab.Exec(e.ctx, e.lab.Node, "ip", "link", "show", dev); err == nil {
		sh := lab.ParseLayout(exec("tc", "qdisc", "show", "dev", dev), exec("tc", "class", "show", "dev", dev), "")
		l.Root, l.Qdiscs, l.Classes = sh.Root, l.Qdiscs+sh.Qdiscs, sh.Classes
	}
	return l
}

// sample is one poll of the agent's status.
type sample struct {
	at        time.Time
	verdict   string
	mitigated bool // a mitigation on up0, installed in the kernel
	installed int  // mitigations installed on any interface (up0, VM ports)
	mit       control.MitigationStatus
	iface     control.InterfaceStatus
	err       error
}

// poller polls /api/v1/status every period until stopped.
type poller struct {
	mu      sync.Mutex
	samples []sample
	stop    chan struct{}
	done    chan struct{}
}

func (e *env) poll(period time.Duration) *poller {
	p := &poller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			st, err := e.agent.Status(e.ctx)
			s := sample{at: time.Now(), err: err}
			for _, is := range st.Interfaces {
				if is.Name == lab.Uplink {
					s.verdict, s.iface = is.Verdict, is
				}
			}
			for _, m := range st.Mitigations {
				if m.Installed {
					s.installed++
				}
				if m.Interface == lab.Uplink && m.Installed {
					s.mitigated, s.mit = true, m
				}
			}
			p.mu.Lock()
			p.samples = append(p.samples, s)
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// Stop ends polling and returns every sample.
func (p *poller) Stop() []sample {
	close(p.stop)
	<-p.done
	return p.snapshot()
}

func (p *poller) snapshot() []sample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sample(nil), p.samples...)
}

// waitFor polls until cond holds on a sample taken after since, and returns
// that sample; it fails the test after limit.
func (p *poller) waitFor(t *testing.T, what string, since time.Time, limit time.Duration, cond func(sample) bool) sample {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, s := range p.snapshot() {
			if s.err == nil && !s.at.Before(since) && cond(s) {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, limit)
	return sample{}
}

// metric sums the samples of a metric in Prometheus text whose labels
// include every name="value" of labels; NaN when there is none.
func metric(text, name string, labels map[string]string) float64 {
	sum, found := 0.0, false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, lbl, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		match := true
		for k, v := range labels {
			if !strings.Contains(lbl, k+`="`+v+`"`) {
				match = false
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err == nil {
			sum, found = sum+f, true
		}
	}
	if !found {
		return math.NaN()
	}
	return sum
}

// metricValue reads one metric from the agent (see metric).
func (e *env) metricValue(name string, labels map[string]string) float64 {
	e.t.Helper()
	text, err := e.agent.Metrics(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return metric(text, name, labels)
}

// throttledSent is the throttled class's (e9:10) Sent bytes on the shaping device of up0, tc as oracle.
func (e *env) throttledSent() (uint64, time.Time) {
	e.t.Helper()
	cs, err := e.lab.Classes(e.ctx, e.lab.Node, shaper.ShapingDevice(lab.Uplink))
	if err != nil {
		e.t.Fatal(err)
	}
	return cs["e9:10"].Bytes, time.Now()
}

// sink starts scripts/sink in the internet namespace on ports (its -ports
// list) and waits until it listens.
func (e *env) sink(ports string) {
	e.t.Helper()
	sink, err := e.lab.Start(e.lab.Inet, e.tools.Sink, "-ports", ports)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := sink.WaitReady("ready", readyLimit); err != nil {
		e.t.Fatal(err)
	}
}
