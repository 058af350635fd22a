// Command crawler is the lab's benign high-fan-out client: workers complete
// TCP handshakes to random addresses inside the lab's benchmark range on the
// given ports and close each connection normally (FIN, not RST). Its SYNs
// are answered, so a detector must not call it a flood. Test tool, never
// shipped.
//
//	crawler [-6] [-workers 64] [-rate PPS] [-duration D] [-ports 80,443] [-dst PREFIX]
//
// It prints one line at the end: "connects=N failed=F seconds=S cps=R".
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/egressguard/egressguard/scripts/internal/labaddr"
)

func main() {
	v6 := flag.Bool("6", false, "IPv6 (destinations in 2001:db8:ff::/48)")
	workers := flag.Int("workers", 64, "concurrent connections")
	rate := flag.Int("rate", 0, "connections per second, 0 = as fast as the workers go")
	duration := flag.Duration("duration", 5*time.Second, "how long to run")
	portsFlag := flag.String("ports", "80,443", "destination ports")
	dstFlag := flag.String("dst", "", "destination prefix inside the lab range (default: the whole range)")
	flag.Parse()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crawler:", err)
		os.Exit(2)
	}
	dst := labaddr.Default(*v6)
	if *dstFlag != "" {
		p, err := netip.ParsePrefix(*dstFlag)
		if err != nil {
			fail(fmt.Errorf("-dst %q: %w", *dstFlag, err))
		}
		dst = p
	}
	dst, err := labaddr.Check(dst)
	if err != nil {
		fail(fmt.Errorf("-dst: %w", err))
	}
	var ports []uint16
	for _, f := range strings.Split(*portsFlag, ",") {
		p, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || p == 0 {
			fail(fmt.Errorf("-ports %q: want ports 1-65535", *portsFlag))
		}
		ports = append(ports, uint16(p))
	}
	if *workers < 1 || *rate < 0 || *duration <= 0 {
		fail(fmt.Errorf("-workers %d, -rate %d, -duration %s: want workers ≥ 1, rate ≥ 0, duration > 0", *workers, *rate, *duration))
	}

	start := time.Now()
	deadline := start.Add(*duration)
	var issued, connects, failed atomic.Uint64
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
			d := net.Dialer{Timeout: time.Second}
			for time.Now().Before(deadline) {
				if *rate > 0 {
					n := issued.Add(1)
					due := start.Add(time.Duration(float64(n) / float64(*rate) * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
				ap := netip.AddrPortFrom(labaddr.Random(dst, rng), ports[rng.IntN(len(ports))])
				c, err := d.Dial("tcp", ap.String())
				if err != nil {
					failed.Add(1)
					continue
				}
				c.Close()
				connects.Add(1)
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("connects=%d failed=%d seconds=%.3f cps=%.0f\n", connects.Load(), failed.Load(), secs, float64(connects.Load())/secs)
}
