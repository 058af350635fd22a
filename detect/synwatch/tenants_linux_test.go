package synwatch

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect"
	eglab "github.com/egressguard/egressguard/internal/lab"
)

// TestBridgePortsKeyed runs two VMs behind the node's bridge: vm1 floods
// :80 from its own address, vm2 floods :443 from spoofed random addresses.
// With BridgePorts the capture names each flood by its port (and vm1's by
// its source), marks vm2's as spoofed, and names vm2's VM from libvirt's
// live XML.
func TestBridgePortsKeyed(t *testing.T) {
	requireRoot(t)
	l := eglab.NewT(t, "egc", 2)
	ctx := context.Background()
	for _, vm := range l.VMs {
		// A VM that talks through the node leaves a neighbour entry: the
		// address its port owns.
		if err := l.Greet(ctx, vm); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	xml := fmt.Sprintf(`<domstatus state='running'><domain type='kvm'><name>tenant-b</name><uuid>6f0c2d4e-0000-4000-8000-000000000002</uuid>
<devices><interface type='bridge'><target dev='%s'/></interface></devices></domain></domstatus>`, l.VMs[1].Port)
	if err := os.WriteFile(filepath.Join(dir, "tenant-b.xml"), []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	ll := wrapLab(t, l)
	w := ll.watch(t, Options{BridgePorts: true, LibvirtDir: dir})

	generator(t, "synflood") // built before the floods start
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ll.run(t, l.VMs[0].NS, "synflood", "-ports", "80", "-rate", "20000", "-duration", "3s")
	}()
	go func() {
		defer wg.Done()
		ll.run(t, l.VMs[1].NS, "synflood", "-ports", "443", "-rate", "10000", "-duration", "3s", "-spoof", "10.77.0.0/16")
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	vm1 := "port " + l.VMs[0].Port
	vm2 := "port " + l.VMs[1].Port
	src1 := "source " + l.VMs[0].Addr.String()
	want := []string{vm1, vm2, src1}
	found := map[string]detect.KeyVerdict{}
	// Other keys (the interface aggregate) may flood too: wait for the
	// wanted ones, not for any three.
	haveAll := func() bool {
		for _, k := range want {
			if _, ok := found[k]; !ok {
				return false
			}
		}
		return true
	}
	for running := true; running && !haveAll(); {
		select {
		case <-done:
			running = false
		default:
		}
		for _, k := range w.Keys() {
			if k.State == detect.StateFlood {
				if _, ok := found[k.Key]; !ok {
					found[k.Key] = k
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	<-done
	for k, v := range found {
		t.Logf("%s: %v signature %+v", k, v.Reasons, v.Signature)
	}
	for _, k := range want {
		if _, ok := found[k]; !ok {
			t.Errorf("%s never a flood", k)
		}
	}
	if s := found[vm1].Signature; s.Spoofed || !slices.Equal(s.DstPorts, []uint16{80}) || !slices.Contains(s.Sources, l.VMs[0].Addr) {
		t.Errorf("%s signature %+v, want :80 from %s, not spoofed", vm1, s, l.VMs[0].Addr)
	}
	if s := found[src1].Signature; !slices.Equal(s.Ports, []string{l.VMs[0].Port}) {
		t.Errorf("%s signature %+v, want port %s", src1, s, l.VMs[0].Port)
	}
	s := found[vm2].Signature
	if !s.Spoofed || !slices.Equal(s.DstPorts, []uint16{443}) || len(s.VMs) != 1 || s.VMs[0].Name != "tenant-b" {
		t.Errorf("%s signature %+v, want spoofed :443 from libvirt domain tenant-b", vm2, s)
	}
	if !found[vm2].Spoofing {
		t.Errorf("%s: spoofing signal not set", vm2)
	}
}

// TestLateSynAcksNeverFlood: a healthy client whose SYN-ACKs come back
// 300 ms late (held by a userspace delay line on the internet side, as no
// netem is needed) is never suspect under the default rtt_allowance, while
// its SYN rate is well above syn_rate_min.
func TestLateSynAcksNeverFlood(t *testing.T) {
	requireRoot(t)
	l := newLab(t)
	l.startSink(t)
	ctx := context.Background()
	if _, err := l.Exec(ctx, l.inet, "iptables", "-A", "OUTPUT", "-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK",
		"-j", "NFQUEUE", "--queue-num", "7", "--queue-bypass"); err != nil {
		t.Skipf("no NFQUEUE target for the delay line: %v", err)
	}
	dl, err := l.Start(l.inet, generator(t, "delayline"), "-queue", "7", "-delay", "300ms")
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.WaitReady("ready", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cfg := detect.DefaultConfig()
	w := l.watch(t, Options{Detect: cfg})
	generator(t, "crawler")
	done := make(chan map[string]float64, 1)
	go func() { done <- l.run(t, l.node, "crawler", "-duration", "4s", "-workers", "2000") }()
	var peak float64
	w.Collect()
	last := time.Now()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		for _, k := range w.Keys() {
			if k.Suspect || k.State != detect.StateClean {
				t.Errorf("%s %s: %v (rates %+v)", k.Key, k.State, k.Reasons, k.Rates)
			}
		}
		time.Sleep(250 * time.Millisecond)
		c := w.Collect()
		if r := float64(c.SynOut) / time.Since(last).Seconds(); r > peak {
			peak = r
		}
		last = time.Now()
	}
	if err := dl.Stop(2 * time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("delay line: %s; peak SYN out %.0f/s", strings.TrimSpace(dl.Stdout()), peak)
	if peak <= cfg.SynRateMin {
		t.Fatalf("peak SYN out %.0f/s never exceeded syn_rate_min %.0f/s: the test proves nothing", peak, cfg.SynRateMin)
	}
}

// TestConfiguredOwnedAddressesAreNotSpoofed: a VM sends 1500 UDP/s from
// random addresses of 10.77.0.0/16, addresses the bridge never learned for
// its port. Its port reads as spoofing (a flood: above spoof_rate_min, while
// the UDP rate stays below udp_rate_min). Reconfigured with detect.owned
// listing 10.77.0.0/16 for that port, as a reload does, the same traffic is
// never spoofing.
func TestConfiguredOwnedAddressesAreNotSpoofed(t *testing.T) {
	requireRoot(t)
	l := eglab.NewT(t, "ego", 1)
	ctx := context.Background()
	vm := l.VMs[0]
	// Talking through the node leaves a neighbour entry: the port owns an
	// IPv4 address, so its IPv4 sources are judged.
	if err := l.Greet(ctx, vm); err != nil {
		t.Fatal(err)
	}
	ll := wrapLab(t, l)
	cfg := detect.DefaultConfig()
	w := ll.watch(t, Options{BridgePorts: true, Detect: cfg, LibvirtDir: t.TempDir()})
	key := "port " + vm.Port

	generator(t, "synflood")
	// flood sends for 2 s and returns the port's verdicts seen meanwhile.
	flood := func() (spoofing, floods int, last detect.KeyVerdict) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			ll.run(t, vm.NS, "synflood", "-udp", "-ports", "4242", "-rate", "1500", "-duration", "2s", "-spoof", "10.77.0.0/16")
		}()
		for running := true; running; {
			select {
			case <-done:
				running = false
			case <-time.After(50 * time.Millisecond):
			}
			for _, k := range w.Keys() {
				if k.Key != key {
					continue
				}
				last = k
				if k.Spoofing {
					spoofing++
				}
				if k.State == detect.StateFlood {
					floods++
				}
			}
		}
		return spoofing, floods, last
	}

	spoofing, floods, last := flood()
	t.Logf("unconfigured: %s spoofing in %d polls, flood in %d; last %s %v", key, spoofing, floods, last.State, last.Reasons)
	if spoofing == 0 || floods == 0 {
		t.Fatalf("%s never spoofing (%d) or never a flood (%d) without detect.owned: the test proves nothing", key, spoofing, floods)
	}
	if err := w.Reconfigure(cfg, detect.Owned{vm.Port: {netip.MustParsePrefix("10.77.0.0/16")}}); err != nil {
		t.Fatal(err)
	}
	// The owned prefixes apply at the next inventory read; the first
	// flood's verdict ends after key_exit_ticks clean ticks.
	time.Sleep(2 * inventoryEvery)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, ok := find(w.Keys(), key)
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still not clean 10 s after the first flood", key)
		}
	}
	before := w.Stats().Sampled
	spoofing, floods, last = flood()
	if n := w.Stats().Sampled - before; n < 1000 {
		t.Fatalf("the capture sampled %d packets during the second flood: it proves nothing", n)
	}
	t.Logf("detect.owned %s [10.77.0.0/16]: spoofing in %d polls, flood in %d; last %q %v (spoofed %.0f/s)", vm.Port, spoofing, floods, last.State, last.Reasons, last.Rates.SpoofedOutPps)
	if spoofing != 0 || floods != 0 {
		t.Errorf("%s with its prefix in detect.owned: spoofing in %d polls, flood in %d; want neither", key, spoofing, floods)
	}
}

func find(vs []detect.KeyVerdict, key string) (detect.KeyVerdict, bool) {
	for _, v := range vs {
		if v.Key == key {
			return v, true
		}
	}
	return detect.KeyVerdict{}, false
}
