package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q) error = %v, want it to contain %q", tc.yaml, err, tc.want)
			}
		})
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
