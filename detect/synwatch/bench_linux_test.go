package synwatch

import (
	"context"
	"flag"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/egressguard/egressguard/detect/account"
	"golang.org/x/sys/unix"
)

// replaySet is the mix a busy node under a SYN flood sends: bulk TCP data,
// flood SYNs, QUIC-like UDP/443 and DNS.
func replaySet(t testing.TB) [][]byte {
	var set [][]byte
	add := func(n int, f frameSpec) {
		for range n {
			set = append(set, f.serialize(t))
		}
	}
	add(5, frameSpec{src: "198.19.255.2", dst: "198.18.0.9", sport: 40000, dport: 443, flags: "A", payload: 1400})
	add(3, frameSpec{src: "198.19.255.2", dst: "198.18.7.9", sport: 40001, dport: 80, flags: "S"})
	add(1, frameSpec{udp: true, src: "198.19.255.2", dst: "198.18.0.10", sport: 5000, dport: 443})
	add(1, frameSpec{udp: true, src: "198.19.255.2", dst: "198.18.0.53", sport: 5001, dport: 53})
	return set
}

// threadCPU returns the CPU time the thread tid has used
// (MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)).
func threadCPU(tid int) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^tid<<3|6), &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// BenchmarkCapture replays the same frames out of the node's up0 and reports
// the CPU the capturing thread spends per replayed frame: synwatch (kernel
// filter, ring, DecodingLayerParser) against a naive capture (no filter, one
// recvfrom and one gopacket.NewPacket per frame).
func BenchmarkCapture(b *testing.B) {
	requireRoot(b)
	set := replaySet(b)
	for _, mode := range []string{"synwatch", "naive"} {
		b.Run(mode, func(b *testing.B) {
			l := newLab(b)
			var tid atomic.Int64
			var handled atomic.Uint64
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			ready := make(chan struct{})
			go func() {
				defer close(done)
				runtime.LockOSThread()
				tid.Store(int64(unix.Gettid()))
				if mode == "synwatch" {
					w, err := Open(Options{Interface: "up0", NetNS: l.nodeFD, MaxSampleRate: math.MaxInt32})
					if err != nil {
						b.Error(err)
						close(ready)
						return
					}
					defer w.Close()
					close(ready)
					_ = w.Run(ctx)
					handled.Store(w.Stats().Sampled)
					return
				}
				naiveCapture(ctx, b, l.nodeFD, ready, &handled)
			}()
			<-ready
			sender := openSender(b, l.nodeFD)
			before := threadCPU(int(tid.Load()))
			b.ResetTimer()
			for i := range b.N {
				_ = unix.Sendto(sender.fd, set[i%len(set)], 0, sender.to)
			}
			time.Sleep(4 * blockTimeoutMs * time.Millisecond)
			b.StopTimer()
			used := threadCPU(int(tid.Load())) - before
			cancel()
			<-done
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "capture-cpu-ns/frame")
			b.ReportMetric(float64(handled.Load())/float64(b.N), "handled/frame")
		})
	}
}

type sender struct {
	fd int
	to unix.Sockaddr
}

func openSender(b *testing.B, nsFD int) sender {
	s, err := inNetNS(nsFD, func() (sender, error) {
		ifc, err := net.InterfaceByName("up0")
		if err != nil {
			return sender{}, err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return sender{fd: fd, to: &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}}, err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(s.fd) })
	return s
}

// naiveCapture is the baseline: every frame, one syscall, one allocated
// gopacket.Packet, classified like decode does.
func naiveCapture(ctx context.Context, b *testing.B, nsFD int, ready chan struct{}, handled *atomic.Uint64) {
	fd, err := inNetNS(nsFD, func() (int, error) {
		ifc, err := net.InterfaceByName("up0")
		if err != nil {
			return 0, err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return 0, err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000})
		return fd, unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index})
	})
	close(ready)
	if err != nil {
		b.Error(err)
		return
	}
	defer unix.Close(fd)
	buf := make([]byte, 65536)
	dec := newDecoder(DefaultPorts)
	var n uint64
	for ctx.Err() == nil {
		m, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		out := from.(*unix.SockaddrLinklayer).Pkttype == unix.PACKET_OUTGOING
		p := gopacket.NewPacket(buf[:m], layers.LayerTypeEthernet, gopacket.Default)
		ap := account.Packet{Out: out}
		if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
			ap.Proto = account.ProtoTCP
			for _, f := range []struct {
				set  bool
				flag uint8
			}{{tcp.SYN, account.FlagSYN}, {tcp.ACK, account.FlagACK}, {tcp.RST, account.FlagRST}, {tcp.FIN, account.FlagFIN}} {
				if f.set {
					ap.TCPFlags |= f.flag
				}
			}
		} else if udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			ap.Proto, ap.SrcPort, ap.DstPort = account.ProtoUDP, uint16(udp.SrcPort), uint16(udp.DstPort)
		}
		if dec.kind(ap) != kindNone {
			n++
		}
	}
	handled.Store(n)
}

var floodBench = flag.Duration("flood-bench", 0, "run TestFloodBench: capture while synflood runs at full speed for this long")

// TestFloodBench measures the whole capture pipeline in this process while
// synflood runs at full speed in the lab: CPU share of one core, peak RSS and
// the SYN estimate's error against the internet side's counter. Opt-in:
// go test -run TestFloodBench -count 3 -args -flood-bench=5s ./detect/synwatch
func TestFloodBench(t *testing.T) {
	if *floodBench <= 0 {
		t.Skip("opt-in: -flood-bench DURATION")
	}
	generator(t, "synflood") // build before the clock starts
	l := newLab(t)
	w := l.watch(t, Options{})
	before := l.truth(t, "syn")
	w.Collect()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	res := l.run(t, l.node, "synflood", "-duration", floodBench.String())
	settle()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	wall := time.Since(start)
	c := w.Collect()
	truth := l.truth(t, "syn") - before
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	errPct := 100 * (float64(c.SynOut) - float64(truth)) / float64(truth)
	t.Logf("flood %.0f pps (truth %d SYNs in %s); capture CPU %.2f%% of one core; VmHWM %s; SynOut %d, error %+.2f%%; stats %+v",
		res["pps"], truth, wall.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(), vmHWM(), c.SynOut, errPct, w.Stats())
}

func vmHWM() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			kb, _ := strconv.Atoi(f[0])
			return strconv.FormatFloat(float64(kb)/1024, 'f', 1, 64) + " MiB"
		}
	}
	return "?"
}
