package account

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
)

var (
	vmA    = netip.MustParseAddr("198.19.128.11")
	node   = netip.MustParseAddr("198.19.255.2")
	remote = netip.MustParseAddr("198.18.0.10")
)

func syn(src netip.Addr, dport uint16) Packet {
	return Packet{Out: true, Src: src, Dst: remote, Proto: ProtoTCP, TCPFlags: FlagSYN, SrcPort: 40000, DstPort: dport, Length: 60}
}

func synAck(to netip.Addr) Packet {
	return Packet{Src: remote, Dst: to, Proto: ProtoTCP, TCPFlags: FlagSYN | FlagACK, SrcPort: 443, DstPort: 40000, Length: 60}
}

func rows(a *Accounting, recent, lagged Span) map[Key]Row {
	out := map[Key]Row{}
	a.Each(recent, lagged, func(r *Row) {
		c := *r
		c.Ports = append([]PortCount(nil), r.Ports...)
		out[r.Key] = c
	})
	return out
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		want Kind
	}{
		{"syn out", syn(node, 80), KindSynOut},
		{"syn in is nothing", Packet{Proto: ProtoTCP, TCPFlags: FlagSYN}, KindNone},
		{"syn-ack in", synAck(node), KindSynAckIn},
		{"syn-ack out is nothing", Packet{Out: true, Proto: ProtoTCP, TCPFlags: FlagSYN | FlagACK}, KindNone},
		{"bare rst out", Packet{Out: true, Proto: ProtoTCP, TCPFlags: FlagRST}, KindRstOut},
		{"rst|ack out closes", Packet{Out: true, Proto: ProtoTCP, TCPFlags: FlagRST | FlagACK}, KindCloseOut},
		{"fin out closes", Packet{Out: true, Proto: ProtoTCP, TCPFlags: FlagFIN | FlagACK}, KindCloseOut},
		{"data out", Packet{Out: true, Proto: ProtoTCP, TCPFlags: FlagACK}, KindNone},
		{"udp out", Packet{Out: true, Proto: ProtoUDP}, KindUDPOut},
		{"udp in", Packet{Proto: ProtoUDP}, KindUDPIn},
		{"icmp out", Packet{Out: true, Proto: ProtoICMP}, KindICMPOut},
		{"icmp in", Packet{Proto: ProtoICMP}, KindICMPIn},
		{"other", Packet{Out: true, Proto: ProtoOther}, KindNone},
	}
	for _, tt := range tests {
		if got := Classify(tt.p); got != tt.want {
			t.Errorf("%s: Classify = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestKeys(t *testing.T) {
	a, err := New(Options{Ticks: 8})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		a.Add(syn(node, 443), 1)
		a.Add(synAck(node), 1)
	}
	for range 5 {
		p := syn(vmA, 80)
		a.Add(p, 4) // the VM's frame on the uplink, sampled 1 in 4
		p.Port = "vnet1"
		a.Add(p, 4) // the same frame entering by its bridge port
	}
	a.Add(Packet{Port: "vnet1", Src: remote, Dst: vmA, Proto: ProtoUDP, Length: 100}, 1)
	a.Tick()
	got := rows(a, Span{N: 1}, Span{N: 1})
	check := func(k Key, syns, synacks, pktsOut, bytesOut uint64) {
		t.Helper()
		r, ok := got[k]
		if !ok {
			t.Fatalf("no row for %v", k)
		}
		c := r.Recent
		if c.SynOut != syns || c.SynAckIn != synacks || c.PacketsOut != pktsOut || c.BytesOut != bytesOut {
			t.Errorf("%v: %+v, want syn %d syn-ack %d packets %d bytes %d", k, c, syns, synacks, pktsOut, bytesOut)
		}
	}
	check(Key{Kind: KeyInterface}, 30, 10, 30, 1800)
	check(Key{Kind: KeySource, Addr: node}, 10, 10, 10, 600)
	check(Key{Kind: KeySource, Addr: vmA}, 20, 0, 20, 1200)
	check(Key{Kind: KeyPort, Port: "vnet1"}, 20, 0, 20, 1200)
	if in := got[Key{Kind: KeyPort, Port: "vnet1"}].Recent; in.UDPIn != 1 || in.BytesIn != 100 {
		t.Errorf("port vnet1 replies: %+v, want one UDP in of 100 bytes", in)
	}
	// 20 packets, decayed by 1/8 at the tick.
	if p := got[Key{Kind: KeySource, Addr: vmA}].Ports; len(p) != 1 || p[0] != (PortCount{Proto: ProtoTCP, Port: 80, Count: 18, ProtoTotal: 18}) {
		t.Errorf("vm top ports %v, want tcp/80 ×18", p)
	}
}

func TestSpans(t *testing.T) {
	a, err := New(Options{Ticks: 6})
	if err != nil {
		t.Fatal(err)
	}
	// Tick i carries i+1 SYNs.
	for i := range 5 {
		for range i + 1 {
			a.Add(syn(node, 80), 1)
		}
		a.Tick()
	}
	for _, tt := range []struct {
		s    Span
		want uint64
	}{
		{Span{N: 1}, 5},
		{Span{N: 2}, 9},
		{Span{N: 2, Lag: 1}, 7},
		{Span{N: 5}, 15},
		{Span{N: 9}, 15},        // cut to the history
		{Span{N: 3, Lag: 3}, 3}, // ticks 1 and 0 only: the rest fell out
	} {
		r := rows(a, tt.s, tt.s)[Key{Kind: KeyInterface}]
		if r.Recent.SynOut != tt.want {
			t.Errorf("span %+v: %d SYNs, want %d", tt.s, r.Recent.SynOut, tt.want)
		}
	}
}

func TestIdleKeysFreeTheirSlots(t *testing.T) {
	a, err := New(Options{Ticks: 4, MaxSources: 2})
	if err != nil {
		t.Fatal(err)
	}
	a.Add(syn(node, 80), 1)
	a.Add(syn(vmA, 80), 1)
	for range 4 {
		a.Tick()
	}
	if s, _ := a.Tracked(); s != 0 {
		t.Fatalf("%d sources still tracked after a whole idle history", s)
	}
}

// TestMillionSpoofedSources floods the accounting with ~1M distinct random
// source addresses (one packet each, the shape of a spoofed flood) beside
// one heavy hitter. The heavy hitter must hold a slot and be counted
// exactly from its promotion on, the spoofed ones must land in the other
// key, every packet must be counted somewhere, and memory must not grow.
func TestMillionSpoofedSources(t *testing.T) {
	const (
		spoofed    = 1 << 20
		perTick    = 1 << 14
		heavyEvery = 16 // one heavy-hitter packet per 16 spoofed: 1024 per tick
	)
	heavy := netip.MustParseAddr("198.19.128.99")
	rng := rand.New(rand.NewPCG(1, 2))
	var empty, before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&empty)
	// 18 ticks: what detect.AccountOptions asks at the detector's defaults
	// (a 500 ms window and a 300 ms allowance in 50 ms ticks, plus two).
	a, err := New(Options{Ticks: 18})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&before)

	var total uint64
	for i := range spoofed {
		var b [4]byte
		v := rng.Uint32()
		b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		a.Add(syn(netip.AddrFrom4(b), 443), 1)
		total++
		if i%heavyEvery == 0 {
			a.Add(syn(heavy, 80), 1)
			total++
		}
		if (i+1)%perTick == 0 {
			a.Tick()
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)

	src, _ := a.Tracked()
	if src > a.Options().MaxSources {
		t.Fatalf("%d sources tracked, bound %d", src, a.Options().MaxSources)
	}
	all := Span{N: a.Options().Ticks}
	got := rows(a, Span{N: 1}, all)
	h, ok := got[Key{Kind: KeySource, Addr: heavy}]
	if !ok {
		t.Fatal("the heavy hitter holds no slot")
	}
	if want := uint64(perTick / heavyEvery); h.Recent.SynOut != want {
		t.Errorf("heavy hitter's last tick: %d SYNs, want exactly %d", h.Recent.SynOut, want)
	}
	iface := got[Key{Kind: KeyInterface}].Lagged.SynOut
	var sum uint64
	for k, r := range got {
		if k.Kind == KeySource || k.Kind == KeyOtherSources {
			sum += r.Lagged.SynOut
		}
	}
	if sum != iface {
		t.Errorf("sources and other add up to %d SYNs, the interface counted %d", sum, iface)
	}
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d distinct spoofed sources + 1 heavy hitter (%d packets): %d sources tracked; accounting %.2f MiB at New (max_sources %d, ticks %d), heap grew %+d bytes while counting",
		spoofed, total, src, float64(int64(before.HeapInuse)-int64(empty.HeapInuse))/(1<<20), a.Options().MaxSources, a.Options().Ticks, grew)
	if grew > 1<<20 {
		t.Errorf("heap grew by %d bytes while counting %d distinct sources", grew, spoofed)
	}
}

// TestOptionsBounds: Validate (and New) refuse bounds outside the limits
// and a preallocation above MaxBytes, naming the field; the defaults'
// preallocation is what TestMillionSpoofedSources measures.
func TestOptionsBounds(t *testing.T) {
	for _, tc := range []struct {
		o     Options
		field string
	}{
		{Options{}, ""},
		{Options{MaxSources: -1}, "max_sources"},
		{Options{MaxSources: MaxSourcesLimit + 1}, "max_sources"},
		{Options{MaxPorts: MaxPortsLimit + 1}, "max_ports"},
		{Options{Ticks: 1}, "ticks"},
		{Options{Ticks: MaxTicks + 1}, "ticks"},
		{Options{MaxSources: MaxSourcesLimit, Ticks: 18}, "bytes"},
	} {
		err := tc.o.Validate()
		var be *BoundError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%+v: %v, want valid", tc.o, err)
		case tc.field != "" && (!errors.As(err, &be) || be.Field != tc.field):
			t.Errorf("%+v: %v, want a BoundError on %s", tc.o, err, tc.field)
		}
		if _, nerr := New(tc.o); (nerr == nil) != (err == nil) {
			t.Errorf("%+v: New says %v, Validate %v", tc.o, nerr, err)
		}
	}
	if b := (Options{Ticks: 18}).Bytes(); b < 1<<20 || b > 8<<20 {
		t.Errorf("defaults at 18 ticks preallocate %d bytes, want the few MiB measured", b)
	}
}
