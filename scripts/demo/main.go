// Command demo is `make demo` (docs/design.md §9): it builds the namespace lab with
// one VM behind the node's bridge, runs the agent in enforce mode on the
// node's uplink, and tells the whole story with real traffic: a benign
// upload to 443 that is never throttled, then a raw-socket SYN flood from
// the node and then from the VM, each measured against an SSH-port stream
// and a tenant stream on an unthrottled port. It prints one table row per
// scenario and removes every namespace it made, on Ctrl-C too. Needs root.
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/egressguard/egressguard/shaper"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/detect/attrib"
	"github.com/egressguard/egressguard/internal/lab"
	"github.com/egressguard/egressguard/internal/labagent"
)

const (
	floodFor  = 15 * time.Second
	pollEvery = 200 * time.Millisecond
	sshPort   = 22
	// tenantPort is a port the throttle never matches.
	tenantPort = 5201
	uploadPort = 443
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	if os.Geteuid() != 0 {
		return errors.New("run as root (sudo make demo): it creates network namespaces")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	fmt.Println("== building egressguard and the traffic generators")
	tools, err := lab.BuildTools()
	if err != nil {
		return err
	}
	defer lab.RemoveTools()
	dir, err := os.MkdirTemp("", "egl-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	prefix := lab.RandomPrefix("egl-demo")
	l, err := lab.New(lab.Options{Prefix: prefix, VMs: 1})
	if err != nil {
		return err
	}
	defer func() {
		if err := l.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: cleanup:", err)
		}
		left, err := lab.Leftovers(prefix)
		switch {
		case err != nil:
			fmt.Fprintln(os.Stderr, "demo: ip netns list:", err)
		case len(left) > 0:
			fmt.Fprintln(os.Stderr, "demo: namespaces left behind:", left)
		default:
			fmt.Printf("== cleaned up: `ip netns list` holds none of %s-*\n", prefix)
		}
	}()
	d := &demo{ctx: ctx, lab: l, tools: tools}
	return d.story(dir)
}

type demo struct {
	ctx   context.Context
	lab   *lab.Lab
	tools lab.Tools
	agent *labagent.Agent
}

// row is one scenario's line in the table.
type row struct {
	scenario                   string
	verdict, throttle          time.Duration // since the flood started; 0 = never
	attribution                string
	egressBps                  float64 // the throttled class's Sent bytes rate while throttled
	sshBefore, sshDuring       float64
	tenantBefore, tenantDuring float64
	release                    time.Duration // after the flood ended; 0 = not seen
}

func (d *demo) story(dir string) error {
	for _, port := range []int{sshPort, tenantPort, uploadPort} {
		if _, err := d.lab.IperfServer(d.ctx, port); err != nil {
			return err
		}
	}
	cfg := labagent.Config(dir)
	a, err := labagent.Start(d.ctx, d.lab, d.tools.Egressguard, dir, cfg)
	if err != nil {
		return err
	}
	d.agent = a
	fmt.Printf("== lab %s: node uplink up0 → inet (owns %s, %s); VM %s on br0 port %s\n",
		d.lab.Prefix, lab.Inet4, lab.Inet6, d.lab.VMs[0].Addr, d.lab.VMs[0].Port)
	fmt.Printf("== agent: enforce on up0 and the VM ports, interval %s, enter_after %d, exit_after %d, throttle %s of the flood's signature\n",
		time.Duration(cfg.Detect.Interval), cfg.Detect.EnterAfter, cfg.Detect.ExitAfter, "1mbit")

	fmt.Println("== benign: a large upload to 443 for 5 s")
	polls := d.poll()
	up, err := d.lab.Iperf(d.ctx, d.lab.Node, lab.IperfOptions{Port: uploadPort, Duration: 5 * time.Second})
	samples := polls.stop()
	if err != nil {
		return err
	}
	throttled := false
	for _, s := range samples {
		throttled = throttled || s.mitigated || s.verdict == "flood"
	}
	fmt.Printf("   upload to 443: %.0f Mbit/s, throttled: %v (verdicts seen: %s)\n", up.ReceivedBps/1e6, throttled, verdicts(samples))

	var rows []row
	for _, sc := range []struct{ name, ns string }{
		{"node (raw socket)", d.lab.Node},
		{"VM behind br0", d.lab.VMs[0].NS},
	} {
		fmt.Printf("== flood from the %s for %s\n", sc.name, floodFor)
		r, err := d.scenario(sc.name, sc.ns)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	printTable(rows, float64(cfg.Throttle.Rate))
	return nil
}

// scenario measures the benign streams, floods from ns and follows the
// agent until it releases.
func (d *demo) scenario(name, ns string) (row, error) {
	r := row{scenario: name}
	var err error
	if r.sshBefore, r.tenantBefore, err = d.streams(); err != nil {
		return r, err
	}
	polls := d.poll()
	start := time.Now()
	fl, err := d.lab.Start(ns, d.tools.Synflood, "-duration", floodFor.String())
	if err != nil {
		return r, err
	}
	thr, err := polls.until(d.ctx, start, 10*time.Second, func(s sample) bool { return s.mitigated })
	if err != nil {
		return r, fmt.Errorf("%s: no throttle: %w", name, err)
	}
	r.throttle = thr.at.Sub(start)
	for _, s := range polls.all() {
		if s.verdict == "flood" {
			r.verdict = s.at.Sub(start)
			break
		}
	}
	fmt.Printf("   verdict after %.1f s, throttle after %.1f s: on %s, scope %s %v, %v to ports %v\n", r.verdict.Seconds(), r.throttle.Seconds(),
		thr.mit.Interface, thr.mit.Scope, thr.mit.Sources, thr.mit.Protocols, thr.mit.Ports)
	time.Sleep(500 * time.Millisecond)
	sent0, at0, err := d.sent(thr.mit.Interface)
	if err != nil {
		return r, err
	}
	if r.sshDuring, r.tenantDuring, err = d.streams(); err != nil {
		return r, err
	}
	if err := fl.Wait(d.ctx); err != nil {
		return r, fmt.Errorf("synflood: %w: %s", err, fl.Output())
	}
	sent1, at1, err := d.sent(thr.mit.Interface)
	if err != nil {
		return r, err
	}
	end := time.Now()
	r.egressBps = float64(sent1-sent0) * 8 / at1.Sub(at0).Seconds()
	fmt.Printf("   synflood: %s", fl.Output())
	r.attribution = d.attribution()
	rel, err := polls.until(d.ctx, end, 25*time.Second, func(s sample) bool { return !s.mitigated })
	polls.stop()
	if err != nil {
		return r, fmt.Errorf("%s: not released: %w", name, err)
	}
	r.release = rel.at.Sub(end)
	return r, nil
}

// streams runs the SSH-port stream and the tenant stream together for 3 s,
// each paced at 1 Gbit/s, and returns what their receivers got.
func (d *demo) streams() (ssh, tenant float64, err error) {
	o := lab.IperfOptions{Rate: "1G", Duration: 3 * time.Second}
	o.Port = tenantPort
	tr, err := d.lab.StartIperf(d.lab.Node, o)
	if err != nil {
		return 0, 0, err
	}
	o.Port = sshPort
	s, err := d.lab.Iperf(d.ctx, d.lab.Node, o)
	if err != nil {
		return 0, 0, err
	}
	t, err := tr.Result(d.ctx)
	if err != nil {
		return 0, 0, err
	}
	return s.ReceivedBps, t.ReceivedBps, nil
}

// sent is the throttled class's Sent bytes on the shaping device of the
// throttled interface (the uplink, or a VM's bridge port): tc is the oracle.
func (d *demo) sent(throttled string) (uint64, time.Time, error) {
	cs, err := d.lab.Classes(d.ctx, d.lab.Node, shaper.ShapingDevice(throttled))
	if err != nil {
		return 0, time.Time{}, err
	}
	return cs["e9:10"].Bytes, time.Now(), nil
}

// attribution summarises who the agent named for the latest flood.
func (d *demo) attribution() string {
	st, err := d.agent.Status(d.ctx)
	if err != nil {
		return "status: " + err.Error()
	}
	var at attrib.Attribution
	for _, is := range st.Interfaces {
		if is.Name == lab.Uplink && is.Attribution != nil {
			at = *is.Attribution
		}
	}
	var parts []string
	for _, s := range at.Sources {
		p := s.Addr.String()
		if s.BridgePort != "" {
			p += " via " + s.Bridge + "/" + s.BridgePort
		}
		parts = append(parts, p)
	}
	for _, p := range at.Processes {
		parts = append(parts, fmt.Sprintf("pid %d %s", p.PID, filepath.Base(p.Exe)))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func printTable(rows []row, rate float64) {
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tverdict\tthrottle\tattribution\tflood egress (rate)\tSSH :22 before→during\ttenant :5201 before→during\trelease after end")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%.1f s\t%.1f s\t%s\t%.3f Mbit/s (%.0f, %.2f×)\t%.0f → %.0f Mbit/s\t%.0f → %.0f Mbit/s\t%.1f s\n",
			r.scenario, r.verdict.Seconds(), r.throttle.Seconds(), r.attribution,
			r.egressBps/1e6, rate/1e6, r.egressBps/rate,
			r.sshBefore/1e6, r.sshDuring/1e6, r.tenantBefore/1e6, r.tenantDuring/1e6, r.release.Seconds())
	}
	w.Flush()
}

// sample is one poll of /api/v1/status.
type sample struct {
	at        time.Time
	verdict   string
	mitigated bool
	mit       control.MitigationStatus
}

// poller polls the agent's status every pollEvery in the background.
type poller struct {
	ch   chan sample
	quit chan struct{}
	got  []sample
}

func (d *demo) poll() *poller {
	p := &poller{ch: make(chan sample, 1024), quit: make(chan struct{})}
	go func() {
		defer close(p.ch)
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		for {
			if st, err := d.agent.Status(d.ctx); err == nil {
				s := sample{at: time.Now()}
				for _, is := range st.Interfaces {
					if is.Name == lab.Uplink {
						s.verdict = is.Verdict
					}
				}
				// A VM's flood is throttled on its bridge port, not on up0.
				for _, m := range st.Mitigations {
					if m.Installed {
						s.mitigated, s.mit = true, m
					}
				}
				p.ch <- s
			}
			select {
			case <-p.quit:
				return
			case <-d.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// until waits for a sample taken after since that satisfies cond.
func (p *poller) until(ctx context.Context, since time.Time, limit time.Duration, cond func(sample) bool) (sample, error) {
	timeout := time.After(limit)
	for {
		select {
		case s, ok := <-p.ch:
			if !ok {
				return sample{}, errors.New("polling stopped")
			}
			p.got = append(p.got, s)
			if !s.at.Before(since) && cond(s) {
				return s, nil
			}
		case <-timeout:
			return sample{}, fmt.Errorf("not within %s", limit)
		case <-ctx.Done():
			return sample{}, ctx.Err()
		}
	}
}

// all returns the samples consumed so far.
func (p *poller) all() []sample { return p.got }

// stop ends polling and returns every sample.
func (p *poller) stop() []sample {
	close(p.quit)
	for s := range p.ch {
		p.got = append(p.got, s)
	}
	return p.got
}

func verdicts(ss []sample) string {
	n := map[string]int{}
	for _, s := range ss {
		n[s.verdict]++
	}
	var parts []string
	for _, v := range []string{"clean", "attention", "flood"} {
		if n[v] > 0 {
			parts = append(parts, fmt.Sprintf("%s×%d", v, n[v]))
		}
	}
	return strings.Join(parts, " ")
}
