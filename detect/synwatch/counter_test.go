package synwatch

import (
	"net/netip"
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/account"
)

// TestCounterRepliesSurviveReconfigure: two captures share a reply join;
// the node's SYNs leave by up0 and their SYN-ACKs come back by up1. After a
// config reload on up0 its new key detector still joins the replies, so
// the node's source never floods.
func TestCounterRepliesSurviveReconfigure(t *testing.T) {
	cfg := detect.DefaultConfig()
	cfg.Tick = 100 * time.Millisecond
	newCounter := func() *Counter {
		c, err := NewCounter(nil, 0, 1, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	up0, up1 := newCounter(), newCounter()
	j := detect.NewKeyReplies()
	up0.ShareReplies(j, "up0")
	up1.ShareReplies(j, "up1")
	node, dst := netip.MustParseAddr("198.19.255.2"), netip.MustParseAddr("198.18.0.10")
	syn := observation{Packet: account.Packet{Out: true, Src: node, Dst: dst, Proto: account.ProtoTCP, TCPFlags: account.FlagSYN, SrcPort: 40000, DstPort: 443, Length: 60}, kind: kindSynOut}
	ack := observation{Packet: account.Packet{Src: dst, Dst: node, Proto: account.ProtoTCP, TCPFlags: account.FlagSYN | account.FlagACK, SrcPort: 443, DstPort: 40000, Length: 60}, kind: kindSynAckIn}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for tick := range 60 {
		if tick == 20 {
			reload := cfg
			reload.SynRateMin++
			if err := up0.Reconfigure(reload); err != nil {
				t.Fatal(err)
			}
		}
		up0.count(syn, "", 1300, false)
		up1.count(ack, "", 1300, false)
		now = now.Add(cfg.Tick)
		for name, c := range map[string]*Counter{"up0": up0, "up1": up1} {
			for _, v := range c.Tick(now, detect.Inventory{}) {
				if v.State == detect.StateFlood {
					t.Fatalf("tick %d: %s %s floods: %v", tick, name, v.Key, v.Reasons)
				}
			}
		}
	}
}
