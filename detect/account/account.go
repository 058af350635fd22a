package account

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"unsafe"
)

// Defaults for zero Options fields.
const (
	DefaultMaxSources = 1024
	DefaultMaxPorts   = 256
	DefaultTicks      = 16
	DefaultPromoteMin = 16
)

// Bounds of Options, checked by Validate. MaxBytes caps what New
// preallocates (every slot's tick history): with it, no setting can make
// the accounting take more than a quarter of a GiB, however the bounds
// above combine.
const (
	MaxSourcesLimit = 1 << 20
	MaxPortsLimit   = 1 << 16
	MinTicks        = 2
	MaxTicks        = 1024
	MaxBytes        = 256 << 20
)

// sketchSize is the number of counters in a pool's candidate sketch.
const sketchSize = 1 << 14

// Options bound an Accounting.
type Options struct {
	// MaxSources is how many source addresses are tracked exactly
	// (detect.max_sources_tracked); the rest count in the other key.
	MaxSources int
	// MaxPorts is how many VM bridge ports are tracked exactly
	// (detect.max_ports_tracked); the rest count in the other key.
	MaxPorts int
	// Ticks is how many ticks of history each key keeps: the rule's window
	// plus its RTT allowance.
	Ticks int
	// PromoteMin is the weighted packet count an untracked key must reach
	// within one tick (estimated by a count-min sketch reset every tick) to
	// take the slot of a tracked key that was quieter in the last tick.
	PromoteMin uint64
}

// BoundError is an Options field out of its bounds. Field is "max_sources",
// "max_ports", "ticks" or "bytes" (the preallocation the three make
// together); the detector's config names it in its own terms.
type BoundError struct {
	Field    string
	Value    int
	Min, Max int
}

func (e *BoundError) Error() string {
	return fmt.Sprintf("account: %s %d: want %d to %d", e.Field, e.Value, e.Min, e.Max)
}

func (o *Options) defaults() {
	if o.MaxSources == 0 {
		o.MaxSources = DefaultMaxSources
	}
	if o.MaxPorts == 0 {
		o.MaxPorts = DefaultMaxPorts
	}
	if o.Ticks == 0 {
		o.Ticks = DefaultTicks
	}
	if o.PromoteMin == 0 {
		o.PromoteMin = DefaultPromoteMin
	}
}

// Validate reports the first bound o breaks (zero fields take their
// defaults), as a *BoundError. New runs the same check.
func (o Options) Validate() error {
	o.defaults()
	switch {
	case o.MaxSources < 1 || o.MaxSources > MaxSourcesLimit:
		return &BoundError{"max_sources", o.MaxSources, 1, MaxSourcesLimit}
	case o.MaxPorts < 1 || o.MaxPorts > MaxPortsLimit:
		return &BoundError{"max_ports", o.MaxPorts, 1, MaxPortsLimit}
	case o.Ticks < MinTicks || o.Ticks > MaxTicks:
		return &BoundError{"ticks", o.Ticks, MinTicks, MaxTicks}
	case o.Bytes() > MaxBytes:
		return &BoundError{"bytes", o.Bytes(), 0, MaxBytes}
	}
	return nil
}

// Bytes is what New preallocates for o (zero fields at their defaults):
// every key's ring of per-tick Counters and its top destinations, and the
// slot bookkeeping, in bytes. The maps' buckets and the sketches come on
// top (a fixed 256 KiB for the sketches).
func (o Options) Bytes() int {
	o.defaults()
	keys := o.MaxSources + o.MaxPorts + 3 // + the interface and the two other keys
	perKey := int(unsafe.Sizeof(row{})) + o.Ticks*int(unsafe.Sizeof(Counters{})) +
		int(unsafe.Sizeof(netip.Addr{})) + 2*int(unsafe.Sizeof(int32(0)))
	return keys * perKey
}

// KeyKind says what a Key accounts.
type KeyKind uint8

// Kinds of key.
const (
	KeyInterface    KeyKind = iota // the whole interface: every packet seen on the uplink
	KeySource                      // one source address (replies: their destination)
	KeyPort                        // one VM bridge port
	KeyOtherSources                // every source address that held no slot
	KeyOtherPorts                  // every bridge port that held no slot
)

// Key names what a row of accounting counts.
type Key struct {
	Kind KeyKind
	Addr netip.Addr // KeySource
	Port string     // KeyPort
}

func (k Key) String() string {
	switch k.Kind {
	case KeySource:
		return "source " + k.Addr.String()
	case KeyPort:
		return "port " + k.Port
	case KeyOtherSources:
		return "other sources"
	case KeyOtherPorts:
		return "other ports"
	}
	return "interface"
}

// Accounting counts packets per key in bounded memory. It is not safe for
// concurrent use; the capture serialises Add, Tick and the reads.
type Accounting struct {
	opts    Options
	tick    uint64
	iface   row
	sources *pool[netip.Addr]
	ports   *pool[string]
}

// New returns an Accounting with every slot allocated up front, so memory
// stays what it is at New whatever the traffic.
func New(o Options) (*Accounting, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	seed := maphash.MakeSeed()
	a := &Accounting{
		opts:  o,
		iface: newRow(Key{Kind: KeyInterface}, o.Ticks),
		sources: newPool(o.MaxSources, o, seed, KeyOtherSources, func(k netip.Addr) Key {
			return Key{Kind: KeySource, Addr: k}
		}),
		ports: newPool(o.MaxPorts, o, seed, KeyOtherPorts, func(k string) Key {
			return Key{Kind: KeyPort, Port: k}
		}),
	}
	return a, nil
}

// Options returns the bounds in force (defaults filled in).
func (a *Accounting) Options() Options { return a.opts }

// Add counts p with weight w (the 1-in-w sampling it was captured under).
func (a *Accounting) Add(p Packet, w uint64) {
	k := Classify(p)
	cur := int(a.tick % uint64(a.opts.Ticks))
	if p.Port != "" {
		a.ports.add(p.Port, p, k, w, cur, a.tick)
		return
	}
	a.iface.add(p, k, w, cur, a.tick)
	key := p.Src
	if !p.Out {
		key = p.Dst
	}
	a.sources.add(key.Unmap(), p, k, w, cur, a.tick)
}

// Tick closes the current tick and opens the next: the oldest tick's counts
// fall out of every key's history, keys with no packet in the whole history
// give their slot back, and the candidate sketches start over.
func (a *Accounting) Tick() {
	a.tick++
	next := int(a.tick % uint64(a.opts.Ticks))
	a.iface.roll(next)
	a.sources.roll(next, a.tick)
	a.ports.roll(next, a.tick)
}

// Span is a run of complete ticks: the N ticks that end Lag ticks before
// the last complete one (Lag 0: the last N complete ticks).
type Span struct{ N, Lag int }

// Row is one key's sums over two spans of ticks, as Each reports them.
type Row struct {
	Key Key
	// Recent is the sum over the recent span (replies, resets, closes).
	Recent Counters
	// Lagged is the sum over the lagged span (what was sent and has had
	// the allowance to be answered).
	Lagged Counters
	// Ports are the key's top outbound destinations, most packets first
	// (counts decay by 1/8 per tick, so they follow what the key does now).
	Ports []PortCount
}

// PortCount is one protocol and destination port with its decayed count.
type PortCount struct {
	Proto Proto
	Port  uint16
	Count uint64
	// Err bounds how much of Count may belong to other destinations
	// (Space-Saving's inherited count): Count-Err is certain.
	Err uint64
	// ProtoTotal is the decayed count of every packet out of Proto, so
	// (Count-Err)/ProtoTotal is the share of the protocol this port surely
	// takes.
	ProtoTotal uint64
}

// Each calls fn for the interface key, every tracked port and source, and
// the two other keys, with their sums over recent and lagged; the Row is
// reused between calls. Spans longer than the history are cut to it.
func (a *Accounting) Each(recent, lagged Span, fn func(*Row)) {
	var r Row
	emit := func(x *row) {
		r.Key = x.key
		r.Recent = x.sum(a.tick, recent, a.opts.Ticks)
		r.Lagged = x.sum(a.tick, lagged, a.opts.Ticks)
		r.Ports = x.ports.sorted(r.Ports[:0])
		fn(&r)
	}
	emit(&a.iface)
	a.ports.each(emit)
	a.sources.each(emit)
}

// Tracked returns how many source and port keys hold a slot.
func (a *Accounting) Tracked() (sources, ports int) {
	return len(a.sources.index), len(a.ports.index)
}

// row is one key's history: a ring of per-tick Counters.
type row struct {
	key      Key
	buckets  []Counters
	ports    topPorts
	lastTick uint64 // the last tick the key saw a packet in
	tickPkts uint64 // weighted packets in the current tick
}

func newRow(k Key, ticks int) row {
	return row{key: k, buckets: make([]Counters, ticks)}
}

func (r *row) add(p Packet, k Kind, w uint64, cur int, tick uint64) {
	r.buckets[cur].add(p, k, w)
	r.lastTick = tick
	r.tickPkts += w
	// Neighbour discovery, MLD, DHCP and the like are no one's flood: they
	// never name a signature's destinations.
	if p.Out && p.Proto != ProtoOther && !p.Dst.IsMulticast() && !p.Src.IsLinkLocalUnicast() && !p.Src.IsUnspecified() {
		r.ports.add(p.Proto, p.DstPort, w)
	}
}

func (r *row) roll(next int) {
	r.buckets[next] = Counters{}
	r.tickPkts = 0
	r.ports.decay()
}

// sum adds the buckets of span s; the bucket of tick now is the open one.
func (r *row) sum(now uint64, s Span, ticks int) Counters {
	var c Counters
	n := min(s.N, ticks-1-s.Lag)
	for i := range n {
		back := uint64(1 + s.Lag + i)
		if back > now {
			break
		}
		c.Add(r.buckets[int((now-back)%uint64(ticks))])
	}
	return c
}

// pool holds the tracked keys of one kind in preallocated slots, plus the
// other key and the sketch that decides promotions.
type pool[K comparable] struct {
	opts    Options
	seed    maphash.Seed
	mk      func(K) Key
	index   map[K]int32
	keys    []K // the key each slot holds
	slots   []row
	free    []int32
	victims []int32 // slots quieter than PromoteMin in the last tick
	other   row
	sketch  [2][sketchSize]uint32
}

func newPool[K comparable](n int, o Options, seed maphash.Seed, other KeyKind, mk func(K) Key) *pool[K] {
	p := &pool[K]{
		opts: o, seed: seed, mk: mk,
		index:   make(map[K]int32, n),
		keys:    make([]K, n),
		slots:   make([]row, n),
		free:    make([]int32, 0, n),
		victims: make([]int32, 0, n),
		other:   newRow(Key{Kind: other}, o.Ticks),
	}
	for i := n - 1; i >= 0; i-- {
		p.slots[i] = newRow(Key{}, o.Ticks)
		p.free = append(p.free, int32(i))
	}
	return p
}

func (p *pool[K]) add(k K, pkt Packet, kind Kind, w uint64, cur int, tick uint64) {
	if i, ok := p.index[k]; ok {
		p.slots[i].add(pkt, kind, w, cur, tick)
		return
	}
	if len(p.free) == 0 {
		if !p.candidate(k, w) || len(p.victims) == 0 {
			p.other.add(pkt, kind, w, cur, tick)
			return
		}
		v := p.victims[len(p.victims)-1]
		p.victims = p.victims[:len(p.victims)-1]
		p.release(v)
	}
	i := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	s := &p.slots[i]
	clear(s.buckets)
	s.key, s.ports, s.tickPkts = p.mk(k), topPorts{}, 0
	p.keys[i] = k
	p.index[k] = i
	s.add(pkt, kind, w, cur, tick)
}

// candidate counts w for k in a two-row count-min sketch and reports
// whether k's estimate this tick reached PromoteMin.
func (p *pool[K]) candidate(k K, w uint64) bool {
	h := maphash.Comparable(p.seed, k)
	est := uint32(0xffffffff)
	for r := range p.sketch {
		c := &p.sketch[r][(h>>(32*r))%sketchSize]
		*c = uint32(min(uint64(*c)+w, 0xffffffff))
		est = min(est, *c)
	}
	return uint64(est) >= p.opts.PromoteMin
}

func (p *pool[K]) release(i int32) {
	delete(p.index, p.keys[i])
	p.free = append(p.free, i)
}

func (p *pool[K]) roll(next int, tick uint64) {
	p.other.roll(next)
	p.victims = p.victims[:0]
	clear(p.sketch[0][:])
	clear(p.sketch[1][:])
	for k, i := range p.index {
		s := &p.slots[i]
		quiet := s.tickPkts < p.opts.PromoteMin
		s.roll(next)
		switch {
		case tick-s.lastTick >= uint64(p.opts.Ticks):
			delete(p.index, k)
			p.free = append(p.free, i)
		case quiet:
			p.victims = append(p.victims, i)
		}
	}
}

func (p *pool[K]) each(fn func(*row)) {
	for _, i := range p.index {
		fn(&p.slots[i])
	}
	fn(&p.other)
}
