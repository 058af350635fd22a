package synwatch

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/account"
)

// TestConfiguredOwnedStopsSpoofing: a VM on vnet3 was learned to own
// 198.19.128.11 only (neighbour table) and sends a steady 2000 UDP/s from
// 192.0.2.10 and 2001:db8::10, static addresses it has not used before.
// Without config its port reads as spoofing, a flood once the rate passes
// spoof_rate_min; with detect.owned listing them (one as an address, one
// as its /64) nothing is spoofed and the port stays clean. The same
// check, inventory.spoofed, marks the live capture's packets.
func TestConfiguredOwnedStopsSpoofing(t *testing.T) {
	learned := map[string][]netip.Addr{"vnet3": {netip.MustParseAddr("198.19.128.11"), netip.MustParseAddr("2001:db8:1::11")}}
	v4, v6 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")
	dst4, dst6 := netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("2001:db8:ff::10")
	configured := detect.Owned{"vnet3": {netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::/64")}}

	judge := func(owned detect.Owned) (detect.KeyVerdict, bool) {
		t.Helper()
		inv := inventory{}
		var addrs map[string][]netip.Addr
		inv.owned, addrs = ownedSets(learned, owned)
		cfg := detect.DefaultConfig()
		cfg.Tick = 100 * time.Millisecond
		kd, err := detect.NewKeyDetector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		acc, err := account.New(detect.AccountOptions(cfg))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		var last detect.KeyVerdict
		flood := false
		for range 20 { // 2 s of 100 ms ticks, 200 packets each
			for i := range 200 {
				src, dst := v4, dst4
				if i%2 == 1 {
					src, dst = v6, dst6
				}
				p := account.Packet{Out: true, Port: "vnet3", Src: src, Dst: dst, Proto: account.ProtoUDP, SrcPort: 40000, DstPort: 4242, Length: 100}
				p.Spoofed = inv.spoofed("vnet3", p.Src, p.Dst)
				acc.Add(p, 1)
			}
			acc.Tick()
			now = now.Add(cfg.Tick)
			last = detect.KeyVerdict{}
			for _, v := range kd.Judge(now, acc, detect.Inventory{Owned: addrs}) {
				if v.Key == "port vnet3" {
					last = v
					flood = flood || v.State == detect.StateFlood
				}
			}
		}
		return last, flood
	}

	v, flood := judge(nil)
	if !v.Spoofing || !flood || !v.Signature.Spoofed {
		t.Fatalf("unconfigured: port vnet3 %+v (flood %v), want spoofing and a spoofed flood", v, flood)
	}
	t.Logf("unconfigured: %s %s, spoofed %.0f/s: %v", v.Key, v.State, v.Rates.SpoofedOutPps, v.Reasons)
	v, flood = judge(configured)
	if v.Spoofing || flood || v.State != "" && v.State != detect.StateClean {
		t.Fatalf("detect.owned vnet3 [192.0.2.10/32, 2001:db8::/64]: port vnet3 %+v (flood %v), want clean and not spoofing", v, flood)
	}

	// The prefixes count for their family only; an address outside them
	// is still spoofed, and a configured single address names the port's
	// sources in a signature.
	inv := inventory{}
	var addrs map[string][]netip.Addr
	inv.owned, addrs = ownedSets(learned, configured)
	if !inv.spoofed("vnet3", netip.MustParseAddr("192.0.2.11"), dst4) || !inv.spoofed("vnet3", netip.MustParseAddr("2001:db8:2::1"), dst6) {
		t.Error("addresses outside the learned and configured ones must read as spoofed")
	}
	if !slices.Contains(addrs["vnet3"], v4) || slices.Contains(addrs["vnet3"], v6) {
		t.Errorf("signature addresses %v: want the configured 192.0.2.10 and not an address of the /64", addrs["vnet3"])
	}
}
