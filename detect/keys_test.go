package detect

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect/account"
)

var (
	keyNode = netip.MustParseAddr("198.19.255.2")
	keyVM1  = netip.MustParseAddr("198.19.128.11")
	keyVM2  = netip.MustParseAddr("198.19.128.12")
	keyDst  = netip.MustParseAddr("198.18.0.10")
)

// keySim drives an Accounting and a KeyDetector tick by tick, 100 ms apart.
type keySim struct {
	t     *testing.T
	a     *account.Accounting
	d     *KeyDetector
	inv   Inventory
	now   time.Time
	ticks int
	// pending holds replies scheduled for later ticks (a delay line).
	pending map[int][]account.Packet
	rng     *rand.Rand
}

func newKeySim(t *testing.T, cfg Config) *keySim {
	t.Helper()
	cfg.Tick = 100 * time.Millisecond // the traffic below is written per 100 ms
	d, err := NewKeyDetector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := account.New(AccountOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return &keySim{t: t, a: a, d: d, now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		pending: map[int][]account.Packet{}, rng: rand.New(rand.NewPCG(7, 11)),
		inv: Inventory{
			Owned: map[string][]netip.Addr{"vnet1": {keyVM1}, "vnet2": {keyVM2}},
			VMs:   map[string]VM{"vnet2": {Port: "vnet2", Platform: "libvirt", Name: "tenant-b", UUID: "6f0c2d4e-0000-4000-8000-000000000002"}},
		}}
}

// later schedules p to arrive after delay ticks.
func (s *keySim) later(delay int, p account.Packet) {
	s.pending[s.ticks+delay] = append(s.pending[s.ticks+delay], p)
}

// step runs one tick: feed adds this tick's packets, due replies arrive,
// the tick closes and the detector judges.
func (s *keySim) step(feed func()) []KeyVerdict {
	if feed != nil {
		feed()
	}
	for _, p := range s.pending[s.ticks] {
		s.a.Add(p, 1)
	}
	delete(s.pending, s.ticks)
	s.a.Tick()
	s.ticks++
	s.now = s.now.Add(100 * time.Millisecond)
	return s.d.Judge(s.now, s.a, s.inv)
}

func find(vs []KeyVerdict, key string) (KeyVerdict, bool) {
	for _, v := range vs {
		if v.Key == key {
			return v, true
		}
	}
	return KeyVerdict{}, false
}

// out sends n packets from src (through port, when it is a VM's) to dst:dport.
func (s *keySim) out(n int, port string, src netip.Addr, proto account.Proto, flags uint8, dport func() uint16, size uint32, spoofed bool) {
	for range n {
		p := account.Packet{Out: true, Src: src, Dst: keyDst, Proto: proto, TCPFlags: flags, SrcPort: 40000, DstPort: dport(), Length: size}
		s.a.Add(p, 1)
		if port != "" {
			p.Port, p.Spoofed = port, spoofed
			s.a.Add(p, 1)
		}
	}
}

func fixed(p uint16) func() uint16 { return func() uint16 { return p } }

// crawler opens n healthy connections from src this tick: SYN out, the
// SYN-ACK after rtt ticks, then the crawler's FIN.
func (s *keySim) crawler(n int, src netip.Addr, rtt int) {
	s.out(n, "", src, account.ProtoTCP, account.FlagSYN, fixed(443), 60, false)
	for range n {
		s.later(rtt, account.Packet{Src: keyDst, Dst: src, Proto: account.ProtoTCP, TCPFlags: account.FlagSYN | account.FlagACK, SrcPort: 443, DstPort: 40000, Length: 60})
		s.later(rtt, account.Packet{Out: true, Src: src, Dst: keyDst, Proto: account.ProtoTCP, TCPFlags: account.FlagFIN | account.FlagACK, DstPort: 443, Length: 52})
	}
}

// TestBusyNode is docs/design.md §11's measured failure: a VM sends 25k unanswered
// SYN/s to :80 beside the node's healthy 13k connections/s crawler on :443.
// The interface-wide ratio stays near 0.34, so only per-key judgement names
// the VM, by its source and by its bridge port; the node's own source and
// the interface stay unflagged.
func TestBusyNode(t *testing.T) {
	s := newKeySim(t, DefaultConfig())
	for range 20 {
		s.step(func() { s.crawler(1300, keyNode, 1) })
	}
	start := s.ticks
	var floodAt = -1
	for range 50 {
		vs := s.step(func() {
			s.crawler(1300, keyNode, 1)
			s.out(2500, "vnet1", keyVM1, account.ProtoTCP, account.FlagSYN, fixed(80), 60, false)
		})
		for _, v := range vs {
			switch v.Key {
			case "source 198.19.255.2", "interface":
				if v.State == StateFlood {
					t.Fatalf("tick %d: %s flagged: %v", s.ticks, v.Key, v.Reasons)
				}
			}
		}
		if floodAt < 0 {
			if v, ok := find(vs, "source 198.19.128.11"); ok && v.State == StateFlood {
				floodAt = s.ticks - start
				if p, ok := find(vs, "port vnet1"); !ok || p.State != StateFlood {
					t.Errorf("the VM's source is a flood but its port vnet1 is %+v", p)
				}
				if !slices.Equal(v.Signature.DstPorts, []uint16{80}) || !slices.Equal(v.Signature.Protocols, []string{"tcp"}) ||
					!slices.Equal(v.Signature.Ports, []string{"vnet1"}) || v.Signature.Spoofed {
					t.Errorf("signature %+v, want tcp to 80 from vnet1, not spoofed", v.Signature)
				}
			}
		}
	}
	if floodAt < 0 {
		t.Fatal("the VM's flood was never named")
	}
	// 300 ms allowance + the window filling past syn_rate_min + 2 ticks.
	if floodAt > 5 {
		t.Errorf("verdict after %d ticks of flood, want at most 5 (0.5 s)", floodAt)
	}
	t.Logf("VM flood named after %d ticks (%d ms)", floodAt, floodAt*100)
}

// TestLateSynAcks: a healthy client whose SYN-ACKs come back 300 ms late
// (and one at 600 ms with a wider allowance) is never suspect, from its
// first SYN on.
func TestLateSynAcks(t *testing.T) {
	for _, tc := range []struct {
		rtt       int // ticks
		allowance time.Duration
	}{
		{3, 300 * time.Millisecond},
		{2, 300 * time.Millisecond},
		{6, 600 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("rtt %dms allowance %s", tc.rtt*100, tc.allowance), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.RTTAllowance = tc.allowance
			s := newKeySim(t, cfg)
			for range 60 {
				for _, v := range s.step(func() { s.crawler(1300, keyNode, tc.rtt) }) {
					if v.Suspect || v.State != StateClean {
						t.Fatalf("tick %d: %s %s: %v", s.ticks, v.Key, v.State, v.Reasons)
					}
				}
			}
		})
	}
	t.Run("without the allowance the same client looks like a flood", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.RTTAllowance = 0
		s := newKeySim(t, cfg)
		suspect := false
		for range 10 {
			for _, v := range s.step(func() { s.crawler(1300, keyNode, 3) }) {
				suspect = suspect || v.Suspect
			}
		}
		if !suspect {
			t.Fatal("a 300 ms round trip with no allowance was never suspect: the test does not exercise the allowance")
		}
	})
}

func TestFloodShapes(t *testing.T) {
	tests := []struct {
		name      string
		feed      func(s *keySim)
		key       string
		protocols []string
		ports     []uint16 // nil: any
		spoofed   bool
		reason    string
		vm        string
	}{
		{
			name: "syn to 8080",
			feed: func(s *keySim) {
				s.out(600, "vnet1", keyVM1, account.ProtoTCP, account.FlagSYN, fixed(8080), 60, false)
			},
			key: "port vnet1", protocols: []string{"tcp"}, ports: []uint16{8080}, reason: "syn-ack/syn ratio",
		},
		{
			name: "udp to random ports",
			feed: func(s *keySim) {
				s.out(1000, "vnet1", keyVM1, account.ProtoUDP, 0, func() uint16 { return uint16(1024 + s.rng.IntN(60000)) }, 512, false)
			},
			key: "source 198.19.128.11", protocols: []string{"udp"}, reason: "udp out",
		},
		{
			name: "icmp flood, answered",
			feed: func(s *keySim) {
				s.out(2500, "", keyNode, account.ProtoICMP, 0, fixed(0), 84, false)
				for range 2500 {
					s.later(1, account.Packet{Src: keyDst, Dst: keyNode, Proto: account.ProtoICMP, Length: 84})
				}
			},
			key: "source 198.19.255.2", protocols: []string{"icmp"}, reason: "icmp out",
		},
		{
			name: "icmp unanswered",
			feed: func(s *keySim) {
				s.out(300, "", keyNode, account.ProtoICMP, 0, fixed(0), 84, false)
			},
			key: "source 198.19.255.2", protocols: []string{"icmp"}, reason: "reply ratio",
		},
		{
			name: "reflection queries from addresses the VM does not own",
			feed: func(s *keySim) {
				ports := []uint16{53, 123, 11211, 1900}
				for i := range 40 {
					src := netip.AddrFrom4([4]byte{203, 0, 113, byte(s.rng.IntN(250) + 1)})
					s.out(1, "vnet2", src, account.ProtoUDP, 0, fixed(ports[i%4]), 70, true)
				}
			},
			key: "port vnet2", protocols: []string{"udp"}, ports: []uint16{53, 123, 11211, 1900}, spoofed: true,
			reason: "spoofed sources", vm: "tenant-b",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newKeySim(t, DefaultConfig())
			var got KeyVerdict
			for range 30 {
				vs := s.step(func() { tt.feed(s) })
				if v, ok := find(vs, tt.key); ok && v.State == StateFlood {
					got = v
					break
				}
			}
			if got.State != StateFlood {
				t.Fatalf("%s never a flood", tt.key)
			}
			sig := got.Signature
			slices.Sort(sig.DstPorts)
			want := slices.Sorted(slices.Values(tt.ports))
			if !slices.Equal(sig.Protocols, tt.protocols) || !slices.Equal(sig.DstPorts, want) || sig.Spoofed != tt.spoofed {
				t.Errorf("signature %+v, want protocols %v ports %v spoofed %v", sig, tt.protocols, want, tt.spoofed)
			}
			if !strings.Contains(strings.Join(got.Reasons, "; "), tt.reason) {
				t.Errorf("reasons %q, want one containing %q", got.Reasons, tt.reason)
			}
			if tt.vm != "" && (len(sig.VMs) != 1 || sig.VMs[0].Name != tt.vm) {
				t.Errorf("VMs %+v, want %s", sig.VMs, tt.vm)
			}
		})
	}
}

func TestBenignKeys(t *testing.T) {
	tests := []struct {
		name string
		feed func(s *keySim)
	}{
		{"large upload to 443", func(s *keySim) {
			s.out(8000, "", keyNode, account.ProtoTCP, account.FlagACK, fixed(443), 1500, false)
			for range 2000 {
				s.later(1, account.Packet{Src: keyDst, Dst: keyNode, Proto: account.ProtoTCP, TCPFlags: account.FlagACK, Length: 52})
			}
		}},
		{"crawler", func(s *keySim) { s.crawler(1300, keyNode, 1) }},
		{"nat-like mix", func(s *keySim) {
			for range 400 {
				src := netip.AddrFrom4([4]byte{198, 19, 128, byte(10 + s.rng.IntN(40))})
				s.crawler(1, src, 1+s.rng.IntN(2))
			}
			s.out(600, "", keyNode, account.ProtoUDP, 0, fixed(53), 80, false)
			for range 600 {
				s.later(1, account.Packet{Src: keyDst, Dst: keyNode, Proto: account.ProtoUDP, SrcPort: 53, Length: 200})
			}
			s.out(20, "", keyNode, account.ProtoICMP, 0, fixed(0), 84, false)
		}},
		{"vm using its own address", func(s *keySim) {
			s.out(500, "vnet1", keyVM1, account.ProtoUDP, 0, fixed(443), 1200, false)
			for range 200 {
				s.later(1, account.Packet{Port: "vnet1", Src: keyDst, Dst: keyVM1, Proto: account.ProtoUDP, SrcPort: 443, Length: 1200})
				s.later(1, account.Packet{Src: keyDst, Dst: keyVM1, Proto: account.ProtoUDP, SrcPort: 443, Length: 1200})
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newKeySim(t, DefaultConfig())
			for range 60 {
				for _, v := range s.step(func() { tt.feed(s) }) {
					t.Fatalf("tick %d: %s %s: %v", s.ticks, v.Key, v.State, v.Reasons)
				}
			}
		})
	}
}

// TestObserveNamesAFloodingKey: the interface verdict turns flood as soon
// as one key is a flood, with that key's signature, even though the
// interface's own numbers are healthy.
func TestObserveNamesAFloodingKey(t *testing.T) {
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	key := KeyVerdict{Key: "port vnet1", Port: "vnet1", State: StateFlood, Reasons: []string{"syn out 25000/s > 2000/s"},
		Rates:     KeyRates{TxPps: 25000},
		Signature: Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{80}, AvgPacketBytes: 60, Ports: []string{"vnet1"}}}
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	healthy := Counts{SynOut: 38000, SynAckIn: 13000, CloseOut: 13000, Keys: []KeyVerdict{key}}
	v := d.Observe(Sample{Interface: "up0", At: at, Interval: time.Second, Counts: healthy})
	if v.State != StateFlood || v.Signature == nil {
		t.Fatalf("state %s signature %v, want flood with the key's signature", v.State, v.Signature)
	}
	if !slices.Equal(v.Signature.Ports, []string{"vnet1"}) || !slices.Equal(v.Signature.DstPorts, []uint16{80}) {
		t.Errorf("signature %+v, want vnet1 to 80", v.Signature)
	}
	if len(v.Keys) != 1 || !strings.Contains(strings.Join(v.Reasons, ";"), "port vnet1") {
		t.Errorf("keys %v reasons %q, want the port named", v.Keys, v.Reasons)
	}
}

// TestSignatureHoldsWhileTheFloodGoesOnByHysteresis: once the flooding key
// is gone, the verdict stays flood for exit_after intervals with the
// signature it had, never one drawn from the healthy traffic left.
func TestSignatureHoldsWhileTheFloodGoesOnByHysteresis(t *testing.T) {
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	key := KeyVerdict{Key: "source 198.19.128.11", Source: keyVM1, State: StateFlood,
		Signature: Signature{Protocols: []string{"tcp"}, DstPorts: []uint16{80}, Sources: []netip.Addr{keyVM1}}}
	d.Observe(Sample{Interface: "up0", At: at, Interval: time.Second, Counts: Counts{SynOut: 30000, SynAckIn: 13000, Keys: []KeyVerdict{key}}})
	healthy := Counts{SynOut: 13000, SynAckIn: 13000, CloseOut: 13000, Sources: map[netip.Addr]uint64{keyNode: 13000}, DstPorts: map[uint16]uint64{443: 13000}}
	v := d.Observe(Sample{Interface: "up0", At: at.Add(time.Second), Interval: time.Second, Counts: healthy})
	if v.State != StateFlood || v.Signature == nil || !slices.Equal(v.Signature.Sources, []netip.Addr{keyVM1}) {
		t.Fatalf("state %s signature %+v: want flood still naming only %s", v.State, v.Signature, keyVM1)
	}
}

// TestHealthyClientStopping: a healthy crawler that stops at once leaves
// SYNs in the lagged window whose answers came before the latest window;
// they must still count as answered (found in the lab: the busy node's
// crawler called a flood as it finished).
func TestHealthyClientStopping(t *testing.T) {
	for _, rtt := range []int{0, 1, 3} {
		s := newKeySim(t, DefaultConfig())
		for i := range 40 {
			vs := s.step(func() {
				if i < 20 {
					s.crawler(1300, keyNode, rtt)
				}
			})
			for _, v := range vs {
				t.Errorf("rtt %d ticks, tick %d: %s %s: %v", rtt, i, v.Key, v.State, v.Reasons)
			}
		}
	}
}
