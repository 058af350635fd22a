package detect

import (
	"maps"
	"net/netip"
	"testing"

	"github.com/egressguard/egressguard/detect/account"
)

func TestMatchReplies(t *testing.T) {
	crawler := netip.MustParseAddr("198.19.255.2")
	flooder := netip.MustParseAddr("198.19.128.11")
	other := netip.MustParseAddr("198.19.128.12")
	for _, tt := range []struct {
		name string
		in   map[string]*Counts
		want map[string]uint64 // SynAckIn after matching
	}{
		{"asymmetric crawler: SYNs out up0, SYN-ACKs in up1", map[string]*Counts{
			"up0": {SynOut: 2700, Sources: map[netip.Addr]uint64{crawler: 2700}},
			"up1": {SynAckIn: 2620, SynAckTo: map[netip.Addr]uint64{crawler: 2620}},
		}, map[string]uint64{"up0": 2620, "up1": 0}},
		{"a flood beside the crawler stays unanswered", map[string]*Counts{
			"up0": {SynOut: 2700, Sources: map[netip.Addr]uint64{crawler: 2700}},
			"up1": {SynOut: 25000, SynAckIn: 2620, Sources: map[netip.Addr]uint64{flooder: 25000}, SynAckTo: map[netip.Addr]uint64{crawler: 2620}},
		}, map[string]uint64{"up0": 2620, "up1": 0}},
		{"a source on both uplinks shares its replies", map[string]*Counts{
			"up0": {SynOut: 1000, SynAckIn: 900, Sources: map[netip.Addr]uint64{crawler: 1000}, SynAckTo: map[netip.Addr]uint64{crawler: 900}},
			"up1": {SynOut: 3000, SynAckIn: 300, Sources: map[netip.Addr]uint64{crawler: 3000}, SynAckTo: map[netip.Addr]uint64{crawler: 300}},
		}, map[string]uint64{"up0": 300, "up1": 900}},
		{"replies to unkeyed or silent sources stay put", map[string]*Counts{
			"up0": {SynOut: 100, SynAckIn: 50, Sources: map[netip.Addr]uint64{crawler: 100}},
			"up1": {SynAckIn: 70, SynAckTo: map[netip.Addr]uint64{other: 40}},
		}, map[string]uint64{"up0": 50, "up1": 70}},
		{"one interface: unchanged", map[string]*Counts{
			"up0": {SynOut: 100, SynAckIn: 5, Sources: map[netip.Addr]uint64{crawler: 100}, SynAckTo: map[netip.Addr]uint64{crawler: 5}},
		}, map[string]uint64{"up0": 5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			MatchReplies(tt.in)
			for name, want := range tt.want {
				if got := tt.in[name].SynAckIn; got != want {
					t.Errorf("%s: SynAckIn %d, want %d", name, got, want)
				}
			}
		})
	}
}

// TestKeyRepliesAsymmetricRoutes: the node crawls with SYNs out of up0 and
// SYN-ACKs back on up1 (asymmetric routing), beside a VM source flooding
// unanswered SYNs out of up0. Judged per capture, the node's source key
// and up0's interface key see handshakes fail; with the captures sharing a
// KeyReplies, only the VM's source floods.
func TestKeyRepliesAsymmetricRoutes(t *testing.T) {
	for _, joined := range []bool{false, true} {
		up0, up1 := newKeySim(t, DefaultConfig()), newKeySim(t, DefaultConfig())
		if joined {
			j := NewKeyReplies()
			up0.d.ShareReplies(j, "up0")
			up1.d.ShareReplies(j, "up1")
		}
		flooded := map[string]bool{}
		for range 40 {
			up0.out(1300, "", keyNode, account.ProtoTCP, account.FlagSYN, fixed(443), 60, false)
			for range 1300 {
				up1.later(1, account.Packet{Src: keyDst, Dst: keyNode, Proto: account.ProtoTCP, TCPFlags: account.FlagSYN | account.FlagACK, SrcPort: 443, DstPort: 40000, Length: 60})
				up0.later(1, account.Packet{Out: true, Src: keyNode, Dst: keyDst, Proto: account.ProtoTCP, TCPFlags: account.FlagFIN | account.FlagACK, DstPort: 443, Length: 52})
			}
			up0.out(500, "", keyVM1, account.ProtoTCP, account.FlagSYN, fixed(80), 60, false)
			for capture, vs := range map[string][]KeyVerdict{"up0": up0.step(nil), "up1": up1.step(nil)} {
				for _, v := range vs {
					if v.State == StateFlood {
						flooded[capture+" "+v.Key] = true
					}
				}
			}
		}
		want := map[string]bool{"up0 source 198.19.128.11": true}
		if !joined {
			want["up0 source 198.19.255.2"], want["up0 interface"] = true, true
		}
		if !maps.Equal(flooded, want) {
			t.Errorf("joined %v: floods %v, want %v", joined, flooded, want)
		}
	}
}

// TestCredited: a source's replies are shared between the captures it sent
// by in proportion to what it sent by each; where it sent nothing anywhere
// its own replies stay.
func TestCredited(t *testing.T) {
	own := replyTally{sent: [protoCount]uint64{300, 0, 10}, replies: [protoCount]uint64{0, 7, 0}}
	total := replyTally{sent: [protoCount]uint64{1200, 0, 10}, replies: [protoCount]uint64{1000, 7, 9}}
	got := credited(own, total)
	if want := [protoCount]uint64{250, 7, 9}; got != want {
		t.Errorf("credited = %v, want %v (tcp 1000×300/1200, udp own, icmp all)", got, want)
	}
}
