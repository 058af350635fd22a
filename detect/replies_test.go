package detect

import (
	"net/netip"
	"testing"
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
