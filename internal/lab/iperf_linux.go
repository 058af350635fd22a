package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// IperfOptions describe one iperf3 client run.
type IperfOptions struct {
	Dst      netip.Addr    // default Dst4
	Port     int           // the server's port (IperfServer)
	Duration time.Duration // -t, default 3 s
	Rate     string        // -b, e.g. "1G"; "" = iperf3's default (unlimited TCP)
	UDP      bool          // -u
	Reverse  bool          // -R
}

func (o IperfOptions) args() []string {
	dst := o.Dst
	if !dst.IsValid() {
		dst = Dst4
	}
	d := o.Duration
	if d <= 0 {
		d = 3 * time.Second
	}
	a := []string{"-c", dst.String(), "-p", strconv.Itoa(o.Port), "-J",
		"-t", strconv.FormatFloat(d.Seconds(), 'f', -1, 64)}
	if o.Rate != "" {
		a = append(a, "-b", o.Rate)
	}
	if o.UDP {
		a = append(a, "-u")
	}
	if o.Reverse {
		a = append(a, "-R")
	}
	return a
}

// IperfServer runs an iperf3 server on port in the inet namespace, where it
// answers on every address of Inet4 and Inet6, and waits until it listens.
func (l *Lab) IperfServer(ctx context.Context, port int) (*Proc, error) {
	p, err := l.Start(l.Inet, "iperf3", "-s", "-p", strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	for {
		out, _ := l.Exec(ctx, l.Inet, "ss", "-Hltn", "sport = :"+strconv.Itoa(port))
		if strings.Contains(out, "LISTEN") {
			return p, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("lab: iperf3 server on %d exited: %s", port, p.Output())
		case <-ctx.Done():
			return nil, fmt.Errorf("lab: iperf3 server on %d: %w", port, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Iperf runs an iperf3 client in namespace ns to completion.
func (l *Lab) Iperf(ctx context.Context, ns string, o IperfOptions) (IperfResult, error) {
	// iperf3 -J reports its errors as JSON on stdout too.
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, "iperf3"}, o.args()...)...).Output()
	r, perr := ParseIperf(out)
	if perr != nil && err != nil {
		return r, fmt.Errorf("%w (%v)", perr, err)
	}
	return r, perr
}

// IperfRun is an iperf3 client running in the background.
type IperfRun struct{ p *Proc }

// StartIperf starts an iperf3 client in namespace ns in the background;
// Result waits for it.
func (l *Lab) StartIperf(ns string, o IperfOptions) (*IperfRun, error) {
	p, err := l.Start(ns, "iperf3", o.args()...)
	if err != nil {
		return nil, err
	}
	return &IperfRun{p}, nil
}

// Result waits for the client to finish and parses its report.
func (r *IperfRun) Result(ctx context.Context) (IperfResult, error) {
	werr := r.p.Wait(ctx)
	res, err := ParseIperf([]byte(r.p.Stdout()))
	if err != nil && werr != nil {
		return res, fmt.Errorf("%w (%v)", err, werr)
	}
	return res, err
}
