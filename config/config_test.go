package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/account"
	"github.com/egressguard/egressguard/shaper"
)

func TestParseFull(t *testing.T) {
	c, err := Parse([]byte(`
mode: enforce
node_name: hv-17
interfaces: [eth0, bond0]
listen: 127.0.0.1:9999
detect: {interval: 2s, syn_rate_min: 500, enter_after: 2}
throttle: {rate: 2mbit, link_rate: 10gbit, ports: [443], protocols: [tcp], scope: source, ttl: 10m}
whitelist: {ports: [51820, 6443], cidrs: [192.0.2.0/24, "2001:db8::1"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeEnforce || c.NodeName != "hv-17" || len(c.Interfaces) != 2 {
		t.Errorf("top level: %+v", c)
	}
	if time.Duration(c.Detect.Interval) != 2*time.Second || c.Detect.SynRateMin != 500 || c.Detect.ExitAfter != 30 {
		t.Errorf("detect: %+v (unset keys keep their defaults)", c.Detect)
	}
	if c.Throttle.Rate != 2_000_000 || c.Throttle.LinkRate != 10_000_000_000 || time.Duration(c.Throttle.TTL) != 10*time.Minute {
		t.Errorf("throttle: %+v", c.Throttle)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128")}
	if got := Prefixes(c.Whitelist.CIDRs); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("whitelist.cidrs = %v, want %v", got, want)
	}
}

func TestParseErrorsNameFieldAndValue(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown top key", "mdoe: enforce\n", `unknown key "mdoe"`},
		{"unknown nested key", "throttle:\n  rate: 1mbit\n  burst: 10k\n", `unknown key "throttle.burst"`},
		{"bad mode", "mode: block\n", `mode "block": want observe or enforce`},
		{"bad rate", "throttle: {rate: fast}\n", `throttle.rate "fast": want a rate like 1mbit`},
		{"bare number rate", "throttle: {rate: 1000}\n", `throttle.rate "1000"`},
		{"port out of range", "throttle: {ports: [80, 70000]}\n", `throttle.ports[1] "70000": want a port from 1 to 65535`},
		{"throttle ssh", "throttle: {ports: [22, 443]}\n", `throttle.ports[0] 22: SSH is always whitelisted`},
		{"throttle mesh", "throttle: {ports: [51820]}\n", `throttle.ports[0] 51820: the port is whitelisted`},
		{"bad cidr", "whitelist: {cidrs: [10.0.0.0/33]}\n", `whitelist.cidrs[0] "10.0.0.0/33": want a CIDR`},
		{"bad duration", "throttle: {ttl: soon}\n", `throttle.ttl "soon": want a positive duration`},
		{"negative duration", "detect: {interval: -1s}\n", `detect.interval "-1s"`},
		{"ttl over max", "throttle: {ttl: 48h}\n", `throttle.max_ttl 24h0m0s: want at least throttle.ttl (48h0m0s)`},
		{"bad protocol", "throttle: {protocols: [gre]}\n", `throttle.protocols[0] "gre": want tcp, udp or icmp`},
		{"bad scope", "throttle: {scope: world}\n", `throttle.scope "world"`},
		{"bad ratio", "detect: {synack_ratio_max: 2}\n", `detect.synack_ratio_max 2`},
		{"rtt allowance too long", "detect: {rtt_allowance: 20s}\n", `detect.rtt_allowance 20s`},
		{"bad interface", "interfaces: [\"eth0/1\"]\n", `interfaces[0] "eth0/1"`},
		{"list for scalar", "throttle: {rate: [1mbit]}\n", `throttle.rate want a single value, got a list`},
		{"bad listen", "listen: 9466\n", `listen "9466": want host:port`},
		{"tick too short", "detect: {tick: 5ms}\n", `detect.tick 5ms: want a duration from 20ms to 100ms`},
		{"zero tick", "detect: {tick: 0s}\n", `detect.tick "0s": want a positive duration`},
		{"window below tick", "detect: {tick: 100ms, window: 50ms}\n", `detect.window 50ms: want a duration from detect.tick (100ms) to 10s`},
		{"window too long", "detect: {window: 1m}\n", `detect.window 1m0s`},
		{"key_enter_ticks fraction", "detect: {key_enter_ticks: 1.5}\n", `detect.key_enter_ticks "1.5": want a whole number`},
		{"key_exit_ticks zero", "detect: {key_exit_ticks: 0}\n", `detect.key_exit_ticks 0: want at least 1`},
		{"close ratio zero", "detect: {close_ratio_max: 0}\n", `detect.close_ratio_max 0: want a fraction in (0, 1]`},
		{"udp rate NaN", "detect: {udp_rate_min: .nan}\n", `detect.udp_rate_min NaN`},
		{"udp reply ratio above one", "detect: {udp_reply_ratio_max: 1.5}\n", `detect.udp_reply_ratio_max 1.5`},
		{"icmp rate min negative", "detect: {icmp_rate_min: -1}\n", `detect.icmp_rate_min -1`},
		{"icmp reply ratio zero", "detect: {icmp_reply_ratio_max: 0}\n", `detect.icmp_reply_ratio_max 0`},
		{"icmp rate max inf", "detect: {icmp_rate_max: .inf}\n", `detect.icmp_rate_max +Inf`},
		{"spoof rate zero", "detect: {spoof_rate_min: 0}\n", `detect.spoof_rate_min 0`},
		{"max sources zero", "detect: {max_sources_tracked: 0}\n", `detect.max_sources_tracked 0: want at least 1`},
		{"max sources over memory", "detect: {max_sources_tracked: 1000000}\n", `detect.max_sources_tracked 1000000 and detect.max_ports_tracked 256 over 18 ticks`},
		{"max ports fraction", "detect: {max_ports_tracked: 2.5}\n", `detect.max_ports_tracked "2.5": want a whole number`},
		{"max ports too many", "detect: {max_ports_tracked: 100000}\n", `detect.max_ports_tracked 100000: want 1 to 65536`},
		{"owned bad port name", "detect: {owned: {\"vnet 3\": [192.0.2.10]}}\n", `detect.owned "vnet 3"`},
		{"owned bad prefix", "detect: {owned: {vnet3: [192.0.2.10, 10.0.0.0/33]}}\n", `detect.owned.vnet3[1] "10.0.0.0/33": want a CIDR`},
		{"owned mapped", "detect: {owned: {vnet3: [\"::ffff:192.0.2.0/120\"]}}\n", `detect.owned.vnet3[0] ::ffff:192.0.2.0/120: write IPv4-mapped addresses as IPv4`},
		{"owned twice", "detect: {owned: {vnet3: [192.0.2.10, 192.0.2.10/32]}}\n", `detect.owned.vnet3[1] 192.0.2.10/32: listed twice`},
		{"owned port twice", "detect:\n  owned:\n    vnet3: [192.0.2.10]\n    vnet3: [192.0.2.11]\n", `"vnet3" already defined`},
		{"owned a list", "detect: {owned: [192.0.2.10]}\n", `cannot unmarshal`},
		{"unknown detect key", "detect: {max_keys: 10}\n", `unknown key "detect.max_keys"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q) error = %v, want it to contain %q", tc.yaml, err, tc.want)
			}
		})
	}
}

// TestParseDetectKeys: every detect.* key reaches the detector's config,
// and detect.owned its prefixes (a bare address as /32 or /128).
func TestParseDetectKeys(t *testing.T) {
	c, err := Parse([]byte(`
detect:
  tick: 20ms
  window: 1s
  rtt_allowance: 150ms
  key_enter_ticks: 3
  key_exit_ticks: 40
  close_ratio_max: 0.4
  udp_rate_min: 8000
  udp_reply_ratio_max: 0.1
  icmp_rate_min: 500
  icmp_reply_ratio_max: 0.3
  icmp_rate_max: 50000
  spoof_rate_min: 10
  max_sources_tracked: 4096
  max_ports_tracked: 512
  owned:
    vnet3: [192.0.2.10, "2001:db8::10/128"]
    tap101i0: [198.51.100.0/29]
`))
	if err != nil {
		t.Fatal(err)
	}
	dc := c.DetectorConfig()
	want := detect.DefaultConfig()
	want.Tick, want.Window, want.RTTAllowance = 20*time.Millisecond, time.Second, 150*time.Millisecond
	want.KeyEnterTicks, want.KeyExitTicks = 3, 40
	want.CloseRatioMax, want.UDPRateMin, want.UDPReplyRatioMax = 0.4, 8000, 0.1
	want.ICMPRateMin, want.ICMPReplyRatioMax, want.ICMPRateMax, want.SpoofRateMin = 500, 0.3, 50000, 10
	want.MaxSourcesTracked, want.MaxPortsTracked = 4096, 512
	if dc != want {
		t.Errorf("DetectorConfig() = %+v\nwant %+v", dc, want)
	}
	o := c.Owned()
	if got := o["vnet3"]; len(got) != 2 || got[0] != netip.MustParsePrefix("192.0.2.10/32") || got[1] != netip.MustParsePrefix("2001:db8::10/128") {
		t.Errorf("owned vnet3 = %v", got)
	}
	if got := o["tap101i0"]; len(got) != 1 || got[0] != netip.MustParsePrefix("198.51.100.0/29") {
		t.Errorf("owned tap101i0 = %v", got)
	}
	if d := Default(); d.DetectorConfig() != detect.DefaultConfig() || d.Owned() != nil {
		t.Errorf("Default() detect section %+v differs from detect.DefaultConfig()", d.DetectorConfig())
	}
}

// TestMaxSourcesTrackedBoundsTheAccounting: detect.max_sources_tracked from
// the file bounds the accounting the capture builds from it. 100,000
// distinct sources, each sending enough in its tick to be promoted, never
// hold more than 16 slots; what finds no slot counts in the other key.
func TestMaxSourcesTrackedBoundsTheAccounting(t *testing.T) {
	c, err := Parse([]byte("detect: {max_sources_tracked: 16}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := account.New(detect.AccountOptions(c.DetectorConfig()))
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddr("198.18.0.10")
	const sources, perTick = 100_000, 1000
	maxTracked := 0
	for i := range sources {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		a.Add(account.Packet{Out: true, Src: src, Dst: dst, Proto: account.ProtoTCP, TCPFlags: account.FlagSYN, DstPort: 443, Length: 60}, 32)
		if (i+1)%perTick == 0 {
			a.Tick()
			n, _ := a.Tracked()
			maxTracked = max(maxTracked, n)
		}
	}
	var other uint64
	a.Each(account.Span{N: 1}, account.Span{N: 1}, func(r *account.Row) {
		if r.Key.Kind == account.KeyOtherSources {
			other = r.Recent.SynOut
		}
	})
	t.Logf("%d distinct sources: at most %d tracked at once (max_sources_tracked 16); other key %d SYNs in the last tick", sources, maxTracked, other)
	if maxTracked > 16 || maxTracked == 0 {
		t.Errorf("%d sources tracked at once, want 1 to 16", maxTracked)
	}
	if other == 0 {
		t.Error("nothing counted in the other key: the sources without a slot were lost")
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil {
		t.Fatal("an explicitly named missing file must be an error")
	}
	if _, err := os.Stat(DefaultPath); err != nil {
		c, err := Load(DefaultPath)
		if err != nil || c.Mode != ModeObserve {
			t.Fatalf("missing default file: %+v, %v; want built-in defaults", c, err)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]uint64{
		"1mbit": 1e6, "500kbit": 5e5, "1Mbit": 1e6, "2gbit": 2e9, "100gbit": 1e11,
		"125kbps": 1e6, "1mibit": 1 << 20, "1.5mbit": 1.5e6, "8bit": 8,
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1", "mbit", "-1mbit", "1xbit", "2tbit", "NaNmbit", "1bit"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
	// What the shaper prints, the config reads back.
	for _, bits := range []uint64{1e6, 1e11, 1_500_000, 999} {
		if got, err := ParseRate(shaper.FormatRate(bits)); err != nil || got != bits {
			t.Errorf("ParseRate(FormatRate(%d)) = %d, %v", bits, got, err)
		}
	}
}

func TestParsePortsAndPrefix(t *testing.T) {
	ps, err := ParsePorts("80, 443,80")
	if err != nil || len(ps) != 3 || ps[0] != 80 || ps[1] != 443 || ps[2] != 80 {
		t.Errorf("ParsePorts = %v, %v", ps, err)
	}
	for _, in := range []string{"", "0", "65536", "80,,443", "http"} {
		if _, err := ParsePorts(in); err == nil {
			t.Errorf("ParsePorts(%q) accepted", in)
		}
	}
	p, err := ParsePrefix("10.1.2.3/8")
	if err != nil || p.String() != "10.0.0.0/8" {
		t.Errorf("ParsePrefix masks: %v, %v", p, err)
	}
	if p, _ := ParsePrefix("::ffff:192.0.2.1"); p.String() != "192.0.2.1/32" {
		t.Errorf("mapped address: %v", p)
	}
	for _, in := range []string{"", "10.0.0.0/33", "fe80::1%eth0", "host"} {
		if _, err := ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("mode: enforce\nthrottle: {rate: 1mbit, ports: [443]}\n"))
	f.Add([]byte("whitelist: {cidrs: [192.0.2.0/24]}\n"))
	f.Add([]byte("detect: [1, 2]\n"))
	f.Add([]byte("detect: {tick: 20ms, window: 1s, key_enter_ticks: 3, key_exit_ticks: 40}\n"))
	f.Add([]byte("detect: {close_ratio_max: 0.4, udp_rate_min: 8000, udp_reply_ratio_max: 0.1}\n"))
	f.Add([]byte("detect: {icmp_rate_min: 500, icmp_reply_ratio_max: 0.3, icmp_rate_max: 50000, spoof_rate_min: 10}\n"))
	f.Add([]byte("detect: {max_sources_tracked: 4096, max_ports_tracked: 512}\n"))
	f.Add([]byte("detect: {owned: {vnet3: [192.0.2.10, \"2001:db8::/64\"]}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		if verr := c.Validate(); verr != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", verr)
		}
	})
}

// TestConfigsThatCannotWork: each file is refused at load, naming the
// field, so no command touches the kernel with it.
func TestConfigsThatCannotWork(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"interfaces: [up0, up0]\n", "interfaces[1] \"up0\": listed twice"},
		{"throttle: {protocols: [tcp, tcp]}\n", "throttle.protocols[1] \"tcp\": duplicate protocol"},
		{"detect: {interval: 1ns}\n", "detect.interval 1ns"},
		{"detect: {interval: 100000h}\n", "detect.interval 100000h0m0s"},
		{"whitelist: {cidrs: [0.0.0.0/0]}\n", "whitelist.cidrs[0] 0.0.0.0/0: a /0 prefix"},
		{"throttle: {ports: [80, 443, 80]}\n", "throttle.ports[2] 80: duplicate port"},
		{"detect: {enter_after: 2.5}\n", "detect.enter_after \"2.5\": want a whole number"},
		{"detect: {syn_rate_min: .nan}\n", "detect.syn_rate_min NaN"},
		{"detect: {syn_rate_min: .inf}\n", "detect.syn_rate_min +Inf"},
		{"detect: {rst_ratio_max: .inf}\n", "detect.rst_ratio_max +Inf"},
		{"throttle: {max_actions_per_hour: 0}\n", "throttle.max_actions_per_hour 0"},
		{"listen: 127.0.0.1:99999\n", "listen \"127.0.0.1:99999\": port"},
		{"listen: nosuch.invalid:9466\n", "listen \"nosuch.invalid:9466\": host"},
		{"whitelist: {cidrs: [\"::ffff:198.18.0.0/111\"]}\n", "whitelist.cidrs[0] ::ffff:198.18.0.0/111: write IPv4-mapped"},
	} {
		_, err := Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v; want an error containing %q", tc.yaml, err, tc.want)
		}
	}
	for _, ok := range []string{"listen: \"[::1]:9466\"\n", "listen: localhost:9466\n", "listen: :9466\n", "listen: 0.0.0.0:9466\n"} {
		if _, err := Parse([]byte(ok)); err != nil {
			t.Errorf("Parse(%q) = %v; want accepted", ok, err)
		}
	}
}
