package synwatch

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/attrib"
)

// Defaults for zero Options fields.
const (
	DefaultMaxSampleRate = 8192
	DefaultTopN          = 10
	// DefaultRecent bounds the sampled packets kept for evidence: two
	// seconds at DefaultMaxSampleRate, each at most Snaplen bytes.
	DefaultRecent = 2 * DefaultMaxSampleRate
)

// maxSampleEvery bounds the sampling divisor (≈ 1 Gpps offered at the default rate).
const maxSampleEvery = 1 << 17

// adaptEvery is how often the sampling divisor is re-chosen from the rate of
// sampled packets; inventoryEvery how often bridge ports, owned addresses
// and VM names are re-read; pollMs bounds how long Run waits for a block
// (and so how late a tick can be).
const (
	adaptEvery     = 100 * time.Millisecond
	inventoryEvery = time.Second
	pollMs         = 20
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
	Recent        int              // sampled packets kept for Recent at most; 0 = DefaultRecent
	Logger        *slog.Logger     // nil = slog.Default()
	Clock         func() time.Time // nil = time.Now
	// BridgePorts also captures every VM bridge port of the namespace (one
	// socket bound to all interfaces), so each port is a key of its own
	// and its source addresses are checked against those it owns.
	BridgePorts bool
	// Detect configures the per-key accounting and rule; the zero value
	// means detect.DefaultConfig().
	Detect detect.Config
	// Owned lists prefixes VM ports own beyond what the neighbour and FDB
	// tables show (config detect.owned), by port name.
	Owned detect.Owned
	// LibvirtDir holds libvirt's live domain XML; "" = attrib.LibvirtQemuDir.
	LibvirtDir string
	// Replies, if set, is the node's join of per-source replies shared by
	// every capture (detect.KeyReplies), so a source whose replies come
	// back by another watched interface is judged on them.
	Replies *detect.KeyReplies
	// OnFlood, if set, is called (from Run, without locks held) when a key
	// turns flood, so a consumer can act before its next interval.
	OnFlood func()
}

// Packet is one sampled frame kept for evidence, truncated to Snaplen.
type Packet struct {
	Time        time.Time
	WireLen     int    // length on the wire
	Outgoing    bool   // sent out of the interface it was captured on (sll_pkttype PACKET_OUTGOING)
	Port        string // the VM bridge port it was captured on; "" = the watched interface
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

// Watcher captures one interface (and, with BridgePorts, the VM ports
// behind it), accumulates Counts until Collect and judges every key each
// detect.tick.
type Watcher struct {
	opts    Options
	log     *slog.Logger
	ring    *ring
	onFrame func(frame)
	uplink  uint32
	invRead *inventoryReader // nil without BridgePorts

	mu          sync.Mutex
	counter     *Counter
	every       uint32
	spec        FilterSpec
	swaps       []swap
	stats       Stats
	tickSampled uint64
	// Frames read from the ring since the last accountDrops, and the
	// packets they stand for.
	batchFrames, batchWeight uint64
	recent                   []Packet // circular; Data grows to each slot's largest frame
	recentNext               int
	recentLen                int
	inv                      inventory
	owned                    detect.Owned  // configured, read at each inventory refresh
	tickEvery                time.Duration // detect.tick in force
	keyStates                map[string]detect.State
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
	if o.Detect == (detect.Config{}) {
		o.Detect = detect.DefaultConfig()
	}
	if o.LibvirtDir == "" {
		o.LibvirtDir = attrib.LibvirtQemuDir
	}
	if err := o.Owned.Validate(); err != nil {
		return nil, fmt.Errorf("synwatch: %w", err)
	}
	counter, err := NewCounter(o.Ports, o.TopN, rand.Uint64(), o.Detect)
	if err != nil {
		return nil, err
	}
	if o.Replies != nil {
		counter.ShareReplies(o.Replies, o.Interface)
	}
	w := &Watcher{
		opts:      o,
		log:       o.Logger.With("interface", o.Interface),
		counter:   counter,
		every:     1,
		spec:      FilterSpec{SampleEvery: 1},
		recent:    make([]Packet, o.Recent),
		owned:     o.Owned,
		tickEvery: o.Detect.Tick,
		keyStates: map[string]detect.State{},
	}
	counter.spoofed = func(port string, src, dst netip.Addr) bool { return w.inv.spoofed(port, src, dst) }
	r, err := inNetNS(o.NetNS, func() (*ring, error) {
		ifc, err := net.InterfaceByName(o.Interface)
		if err != nil {
			return nil, fmt.Errorf("synwatch: interface %s: %w", o.Interface, err)
		}
		if len(ifc.HardwareAddr) != 6 {
			return nil, fmt.Errorf("synwatch: interface %s: not Ethernet framed", o.Interface)
		}
		w.uplink = uint32(ifc.Index)
		bind := ifc.Index
		if o.BridgePorts {
			w.invRead, err = openInventory(o.NetNS, ifc.Index, o.LibvirtDir)
			if err != nil {
				return nil, err
			}
			if w.inv, err = w.invRead.read(o.Owned); err != nil {
				w.log.Warn("synwatch inventory", "err", err)
			}
			w.spec.Uplink, w.spec.Ignore, bind = w.uplink, w.inv.ignore, 0
		}
		filter, err := Filter(w.spec)
		if err != nil {
			return nil, err
		}
		return openRing(bind, filter)
	})
	if err != nil {
		if r != nil {
			_ = r.close()
		}
		if w.invRead != nil {
			w.invRead.close()
		}
		return nil, err
	}
	w.ring = r
	w.onFrame = w.handleFrame
	return w, nil
}

// Reconfigure applies a new per-key config and new configured owned
// prefixes to a running capture (a config reload); on error nothing
// changes. The owned prefixes take effect at the next inventory read
// (within a second). A changed config starts the per-key accounting and
// each key's hysteresis afresh, as a reload does for the interface
// detector; an unchanged one keeps them.
func (w *Watcher) Reconfigure(cfg detect.Config, owned detect.Owned) error {
	if cfg == (detect.Config{}) {
		cfg = detect.DefaultConfig()
	}
	if err := owned.Validate(); err != nil {
		return fmt.Errorf("synwatch: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if cfg != w.opts.Detect {
		if err := w.counter.Reconfigure(cfg); err != nil {
			return err
		}
		w.opts.Detect, w.tickEvery = cfg, cfg.Tick
	}
	w.owned = owned
	return nil
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
// every 100 ms so user space sees at most MaxSampleRate packets per second,
// judging every key each detect.tick and re-reading the bridge ports every
// second.
func (w *Watcher) Run(ctx context.Context) error {
	last := w.opts.Clock()
	lastTick, lastInv := last, last
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
		w.mu.Lock()
		w.accountDrops()
		w.mu.Unlock()
		now := w.opts.Clock()
		w.mu.Lock()
		tickEvery := w.tickEvery
		w.mu.Unlock()
		if now.Sub(lastTick) >= tickEvery {
			w.tick(now)
			lastTick = now
		}
		// A sudden flood re-chooses the divisor as soon as four times the
		// per-interval budget has arrived, before the ring overflows at a
		// divisor too small (drops are compensated only on average).
		w.mu.Lock()
		burst := w.tickSampled >= uint64(w.opts.MaxSampleRate)*4*uint64(adaptEvery)/uint64(time.Second)
		w.mu.Unlock()
		if elapsed := now.Sub(last); elapsed >= adaptEvery || (burst && elapsed > time.Millisecond) {
			if err := w.adapt(elapsed); err != nil {
				return err
			}
			last = now
		}
		if w.invRead != nil && now.Sub(lastInv) >= inventoryEvery {
			if err := w.refreshInventory(); err != nil {
				return err
			}
			lastInv = now
		}
	}
	return nil
}

// tick closes one tick of the per-key accounting, judges every key and
// logs the keys that enter or leave a flood or start spoofing.
func (w *Watcher) tick(now time.Time) {
	w.mu.Lock()
	keys := w.counter.Tick(now, w.inv.detect)
	w.mu.Unlock()
	seen := make(map[string]bool, len(keys))
	flood := false
	for _, k := range keys {
		seen[k.Key] = true
		prev := w.keyStates[k.Key]
		if k.State == prev {
			continue
		}
		w.keyStates[k.Key] = k.State
		flood = flood || k.State == detect.StateFlood
		if k.State == detect.StateFlood || (k.Spoofing && prev == "") {
			w.log.Info("key verdict", "key", k.Key, "state", k.State, "reasons", k.Reasons,
				"protocols", k.Signature.Protocols, "dst_ports", k.Signature.DstPorts, "spoofed", k.Signature.Spoofed,
				"ports", k.Signature.Ports, "vms", k.Signature.VMs, "tx_pps", int(k.Rates.TxPps), "syn_out_pps", int(k.Rates.SynOutPps))
		}
	}
	for k, prev := range w.keyStates {
		if !seen[k] {
			delete(w.keyStates, k)
			if prev == detect.StateFlood {
				w.log.Info("key verdict", "key", k, "state", detect.StateClean, "from", prev)
			}
		}
	}
	if flood && w.opts.OnFlood != nil {
		w.opts.OnFlood()
	}
}

// refreshInventory re-reads ports, owned addresses and VM names, and
// replaces the filter when the interfaces to ignore changed.
func (w *Watcher) refreshInventory() error {
	w.mu.Lock()
	owned := w.owned
	w.mu.Unlock()
	inv, err := w.invRead.read(owned)
	if err != nil && inv.ports == nil {
		w.log.Warn("synwatch inventory", "err", err)
		return nil
	}
	if err != nil {
		w.log.Debug("synwatch inventory", "err", err)
	}
	w.mu.Lock()
	changed := !slices.Equal(inv.ignore, w.spec.Ignore)
	w.inv = inv
	spec := w.spec
	spec.Ignore = inv.ignore
	w.mu.Unlock()
	if !changed {
		return nil
	}
	prog, err := Filter(spec)
	if err != nil {
		return err
	}
	if err := w.ring.attach(prog); err != nil {
		return err
	}
	w.mu.Lock()
	w.spec.Ignore = inv.ignore
	w.mu.Unlock()
	return nil
}

// handleFrame runs with w.mu held. A frame on a VM port is outbound when
// it comes from the VM; it counts on the port's key only (its copy on the
// uplink counts for the sources and the interface).
func (w *Watcher) handleFrame(f frame) {
	weight := w.weightAt(int64(f.sec)*1e9 + int64(f.nsec))
	aw := uint64(weight) // the packets on the wire this frame stands for
	defer func() { w.noteRead(aw) }()
	out, port := f.outgoing, ""
	if w.opts.BridgePorts && f.ifindex != w.uplink {
		name, ok := w.inv.ports[f.ifindex]
		if !ok {
			return
		}
		out, port = !f.outgoing, name
	}
	o, ok := w.counter.dec.decode(f.data, out)
	if !ok {
		return
	}
	aw = w.counter.count(o, port, weight, true)
	w.stats.Sampled++
	w.tickSampled++
	p := &w.recent[w.recentNext]
	p.Time = time.Unix(int64(f.sec), int64(f.nsec))
	p.WireLen, p.Outgoing, p.Port, p.SampleEvery = int(f.wireLen), f.outgoing, port, weight
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
	w.mu.Lock()
	spec := w.spec
	// Drops so far were taken at the divisor being replaced.
	w.accountDrops()
	w.mu.Unlock()
	spec.SampleEvery = want
	prog, err := Filter(spec)
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
	w.spec.SampleEvery = want
	w.mu.Unlock()
	w.log.Debug("synwatch sampling changed", "sample_every", want, "offered_pps", int(offered))
	return nil
}

// Collect returns the estimates since the previous Collect (or Open) and
// starts a new window.
func (w *Watcher) Collect() detect.Counts {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.accountDrops()
	return w.counter.Collect()
}

// noteRead records a frame read from the ring that stands for weight
// packets; it runs with w.mu held.
func (w *Watcher) noteRead(weight uint64) {
	w.counter.win.readWeight += weight
	w.batchFrames++
	w.batchWeight += weight
}

// accountDrops reads (and so resets) the kernel's ring statistics and
// charges the frames the ring had no room for to the window, each as the
// average packets a frame read since the previous call stands for (the
// divisor in effect when the ring overflowed, and the 1 in DataEvery of
// data segments), or as the current divisor when none was read. It runs
// with w.mu held after every read of the ring, before every change of
// divisor and at Collect, so drops are weighted by the sampling they
// happened under and land in the window they happened in. Scaling the
// whole window by the ratio of frames, passed/(passed-dropped), also
// inflated what was read at a larger divisor than the burst that
// overflowed the ring: a crawler over-counted by 14%, a flood by 62%.
func (w *Watcher) accountDrops() {
	passed, dropped, err := w.ring.stats()
	if err != nil {
		w.log.Warn("synwatch ring statistics", "err", err)
		return
	}
	w.stats.Passed += passed
	w.stats.Dropped += dropped
	w.counter.win.dropWeight += dropWeight(dropped, w.batchFrames, w.batchWeight, w.every)
	w.batchFrames, w.batchWeight = 0, 0
}

// Keys returns the latest per-key judgement: the keys that are not clean,
// floods first.
func (w *Watcher) Keys() []detect.KeyVerdict {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counter.Keys()
}

// EvidenceSpan is how far back Recent reaches: twice the per-key history
// (window, RTT allowance and the ticks a key needs to flood), so that a
// replay of the packets first fills the window as the live capture had it
// and then judges the ticks that made the verdict.
func EvidenceSpan(cfg detect.Config) time.Duration {
	return 2 * time.Duration(detect.AccountOptions(cfg).Ticks) * cfg.Tick
}

// Recent returns copies of the sampled packets of the last EvidenceSpan
// (at most Options.Recent of them), oldest first, each with the port it
// was captured on and its sampling divisor.
func (w *Watcher) Recent() []Packet {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := (w.recentNext - w.recentLen + len(w.recent)) % len(w.recent)
	n := w.recentLen
	if n > 0 {
		from := w.recent[(start+n-1)%len(w.recent)].Time.Add(-EvidenceSpan(w.opts.Detect))
		for n > 0 && w.recent[start].Time.Before(from) {
			start, n = (start+1)%len(w.recent), n-1
		}
	}
	out := make([]Packet, 0, n)
	for i := range n {
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
	if w.opts.Replies != nil {
		w.opts.Replies.Forget(w.opts.Interface)
	}
	if w.invRead != nil {
		w.invRead.close()
	}
	return w.ring.close()
}
