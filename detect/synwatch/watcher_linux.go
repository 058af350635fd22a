package synwatch

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egressguard/egressguard/detect"
)

// Defaults for zero Options fields.
const (
	DefaultMaxSampleRate = 8192
	DefaultTopN          = 10
	DefaultRecent        = 64
)

// maxSampleEvery bounds the sampling divisor (≈ 1 Gpps offered at the default rate).
const maxSampleEvery = 1 << 17

// adaptEvery is how often the sampling divisor is re-chosen from the rate of
// sampled packets; pollMs bounds how long Run waits for a block.
const (
	adaptEvery = 100 * time.Millisecond
	pollMs     = 50
)

// DefaultPorts are the UDP ports counted when Options.Ports is empty.
var DefaultPorts = []uint16{80, 443}

// Options configure a Watcher.
type Options struct {
	Interface     string           // interface to watch (Ethernet framing)
	NetNS         int              // fd of the network namespace holding Interface; 0 = current
	Ports         []uint16         // UDP ports counted as UDPOut/UDPIn; empty = DefaultPorts
	MaxSampleRate int              // sampled packets per second user space handles at most; 0 = DefaultMaxSampleRate
	TopN          int              // entries in Counts.DstPorts and Counts.Sources; 0 = DefaultTopN
	Recent        int              // sampled packets kept for Recent; 0 = DefaultRecent
	Logger        *slog.Logger     // nil = slog.Default()
	Clock         func() time.Time // nil = time.Now
}

// Packet is one sampled frame kept for evidence, truncated to Snaplen.
type Packet struct {
	Time        time.Time
	WireLen     int    // length on the wire
	Outgoing    bool   // sent by this host (sll_pkttype PACKET_OUTGOING)
	SampleEvery uint32 // 1-in-N sampling rate it was captured under
	Data        []byte // frame from the Ethernet header on
}

// Stats describe the capture since Open.
type Stats struct {
	SampleEvery uint32 // current 1-in-N kernel sampling divisor
	Passed      uint64 // frames that passed the kernel filter, as of the last Collect
	Sampled     uint64 // frames user space decoded and counted
	Dropped     uint64 // frames that passed the filter but found the ring full
}

// Watcher captures one interface and accumulates Counts until Collect.
type Watcher struct {
	opts    Options
	log     *slog.Logger
	ring    *ring
	onFrame func(frame)

	mu          sync.Mutex
	counter     *Counter
	every       uint32
	swaps       []swap
	stats       Stats
	tickSampled uint64
	recent      []Packet // circular, preallocated Data
	recentNext  int
	recentLen   int
}

// swap records when the filter's divisor changed, in the kernel's realtime
// clock that stamps captured frames, so frames still in the ring from before
// keep the weight they were sampled with.
type swap struct {
	at     int64
	before uint32
}

// Open validates o, creates the capture socket (inside o.NetNS if set) and
// attaches the filter with no sampling. Call Run to capture and Close after.
func Open(o Options) (*Watcher, error) {
	if o.Interface == "" {
		return nil, fmt.Errorf("synwatch: interface %q: want a name", o.Interface)
	}
	if len(o.Ports) == 0 {
		o.Ports = DefaultPorts
	}
	if o.MaxSampleRate < 0 || o.TopN < 0 || o.Recent < 0 {
		return nil, fmt.Errorf("synwatch: max_sample_rate %d, top_n %d, recent %d: want ≥ 0", o.MaxSampleRate, o.TopN, o.Recent)
	}
	if o.MaxSampleRate == 0 {
		o.MaxSampleRate = DefaultMaxSampleRate
	}
	if o.TopN == 0 {
		o.TopN = DefaultTopN
	}
	if o.Recent == 0 {
		o.Recent = DefaultRecent
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	filter, err := FilterProgram(o.Ports, 1)
	if err != nil {
		return nil, err
	}
	r, err := inNetNS(o.NetNS, func() (*ring, error) {
		ifc, err := net.InterfaceByName(o.Interface)
		if err != nil {
			return nil, fmt.Errorf("synwatch: interface %s: %w", o.Interface, err)
		}
		if len(ifc.HardwareAddr) != 6 {
			return nil, fmt.Errorf("synwatch: interface %s: not Ethernet framed", o.Interface)
		}
		return openRing(ifc.Index, filter)
	})
	if err != nil {
		if r != nil {
			_ = r.close()
		}
		return nil, err
	}
	w := &Watcher{
		opts:    o,
		log:     o.Logger.With("interface", o.Interface),
		ring:    r,
		counter: NewCounter(o.Ports, o.TopN, rand.Uint64()),
		every:   1,
		recent:  make([]Packet, o.Recent),
	}
	for i := range w.recent {
		w.recent[i].Data = make([]byte, 0, Snaplen)
	}
	w.onFrame = w.handleFrame
	return w, nil
}

// inNetNS runs fn on a thread switched into the namespace fd (0 = as is).
// A thread that cannot be switched back is left locked so the runtime
// retires it rather than reuse it in the wrong namespace.
func inNetNS[T any](fd int, fn func() (T, error)) (T, error) {
	var zero T
	if fd == 0 {
		return fn()
	}
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return zero, fmt.Errorf("synwatch: open own netns: %w", err)
	}
	defer self.Close()
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return zero, fmt.Errorf("synwatch: enter netns fd %d: %w", fd, err)
	}
	v, err := fn()
	if rerr := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); rerr != nil {
		return v, fmt.Errorf("synwatch: return from netns fd %d: %w", fd, rerr)
	}
	runtime.UnlockOSThread()
	return v, err
}

// Run reads the ring until ctx is done, re-choosing the sampling divisor
// every 100 ms so user space sees at most MaxSampleRate packets per second.
func (w *Watcher) Run(ctx context.Context) error {
	last := w.opts.Clock()
	for ctx.Err() == nil {
		if err := w.ring.wait(pollMs); err != nil {
			return err
		}
		for {
			w.mu.Lock()
			more := w.ring.readBlock(w.onFrame)
			w.mu.Unlock()
			if !more {
				break
			}
		}
		if now := w.opts.Clock(); now.Sub(last) >= adaptEvery {
			if err := w.adapt(now.Sub(last)); err != nil {
				return err
			}
			last = now
		}
	}
	return nil
}

// handleFrame runs with w.mu held.
func (w *Watcher) handleFrame(f frame) {
	weight := w.weightAt(int64(f.sec)*1e9 + int64(f.nsec))
	if !w.counter.addFrame(f.data, f.outgoing, weight) {
		return
	}
	w.stats.Sampled++
	w.tickSampled++
	p := &w.recent[w.recentNext]
	p.Time = time.Unix(int64(f.sec), int64(f.nsec))
	p.WireLen, p.Outgoing, p.SampleEvery = int(f.wireLen), f.outgoing, weight
	p.Data = append(p.Data[:0], f.data...)
	w.recentNext = (w.recentNext + 1) % len(w.recent)
	w.recentLen = min(w.recentLen+1, len(w.recent))
}

func (w *Watcher) weightAt(ts int64) uint32 {
	weight := w.every
	for i := len(w.swaps) - 1; i >= 0 && ts < w.swaps[i].at; i-- {
		weight = w.swaps[i].before
	}
	return weight
}

// adapt picks the power-of-two divisor that brings the offered rate under
// MaxSampleRate; it lowers the divisor only when a quarter would do, so the
// rate does not flap around a boundary.
func (w *Watcher) adapt(elapsed time.Duration) error {
	w.mu.Lock()
	offered := float64(w.tickSampled) * float64(w.every) / elapsed.Seconds()
	w.tickSampled = 0
	cur := w.every
	w.mu.Unlock()
	want := uint32(1)
	if need := uint64(offered / float64(w.opts.MaxSampleRate)); need >= 1 {
		want = uint32(min(uint64(1)<<bits.Len64(need), maxSampleEvery))
	}
	if want == cur || (want < cur && want*4 > cur) {
		return nil
	}
	prog, err := FilterProgram(w.opts.Ports, want)
	if err != nil {
		return err
	}
	if err := w.ring.attach(prog); err != nil {
		return err
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("synwatch: clock_gettime: %w", err)
	}
	w.mu.Lock()
	const keepSwaps = 8
	if len(w.swaps) == keepSwaps {
		w.swaps = append(w.swaps[:0], w.swaps[1:]...)
	}
	w.swaps = append(w.swaps, swap{at: ts.Nano(), before: cur})
	w.every = want
	w.mu.Unlock()
	w.log.Debug("synwatch sampling changed", "sample_every", want, "offered_pps", int(offered))
	return nil
}

// Collect returns the estimates since the previous Collect (or Open) and
// starts a new window.
func (w *Watcher) Collect() detect.Counts {
	passed, dropped, err := w.ring.stats()
	if err != nil {
		w.log.Warn("synwatch ring statistics", "err", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counter.win.kernelPassed += passed
	w.counter.win.kernelDropped += dropped
	w.stats.Passed += passed
	w.stats.Dropped += dropped
	return w.counter.Collect()
}

// Recent returns copies of the last sampled packets, oldest first.
func (w *Watcher) Recent() []Packet {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Packet, 0, w.recentLen)
	start := (w.recentNext - w.recentLen + len(w.recent)) % len(w.recent)
	for i := range w.recentLen {
		p := w.recent[(start+i)%len(w.recent)]
		p.Data = append([]byte(nil), p.Data...)
		out = append(out, p)
	}
	return out
}

// Stats returns the capture's running statistics.
func (w *Watcher) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.SampleEvery = w.every
	return s
}

// Close releases the socket and ring; call it after Run has returned.
func (w *Watcher) Close() error {
	return w.ring.close()
}
