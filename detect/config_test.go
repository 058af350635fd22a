package detect

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // substring; empty = valid
	}{
		{name: "defaults", mutate: func(*Config) {}},
		{name: "zero syn rate", mutate: func(c *Config) { c.SynRateMin = 0 }, wantErr: "detect.syn_rate_min 0"},
		{name: "NaN syn rate", mutate: func(c *Config) { c.SynRateMin = math.NaN() }, wantErr: "detect.syn_rate_min NaN"},
		{name: "ratio above one", mutate: func(c *Config) { c.SynAckRatioMax = 1.5 }, wantErr: "detect.synack_ratio_max 1.5"},
		{name: "negative rst ratio", mutate: func(c *Config) { c.RstRatioMax = -1 }, wantErr: "detect.rst_ratio_max -1"},
		{name: "infinite udp rate", mutate: func(c *Config) { c.UDPRateMin = math.Inf(1) }, wantErr: "detect.udp_rate_min +Inf"},
		{name: "zero enter_after", mutate: func(c *Config) { c.EnterAfter = 0 }, wantErr: "detect.enter_after 0"},
		{name: "zero exit_after", mutate: func(c *Config) { c.ExitAfter = 0 }, wantErr: "detect.exit_after 0"},
		{name: "zero fan-out", mutate: func(c *Config) { c.FanOutMin = 0 }, wantErr: "detect.fan_out_min 0"},
		{name: "negative warmup", mutate: func(c *Config) { c.BaselineWarmup = -2 }, wantErr: "detect.baseline_warmup -2"},
		{name: "zero alpha", mutate: func(c *Config) { c.BaselineAlpha = 0 }, wantErr: "detect.baseline_alpha 0"},
		{name: "tick below the ring's block timeout", mutate: func(c *Config) { c.Tick = 5 * time.Millisecond }, wantErr: "detect.tick 5ms: want a duration from 20ms to 100ms"},
		{name: "tick above 100ms", mutate: func(c *Config) { c.Tick = 200 * time.Millisecond }, wantErr: "detect.tick 200ms"},
		{name: "window shorter than a tick", mutate: func(c *Config) { c.Window = 10 * time.Millisecond }, wantErr: "detect.window 10ms"},
		{name: "shortest tick, longest window and allowance", mutate: func(c *Config) { c.Tick, c.Window, c.RTTAllowance = MinTick, 10*time.Second, 10*time.Second }},
		{name: "NaN icmp rate max", mutate: func(c *Config) { c.ICMPRateMax = math.NaN() }, wantErr: "detect.icmp_rate_max NaN"},
		{name: "zero icmp rate min", mutate: func(c *Config) { c.ICMPRateMin = 0 }, wantErr: "detect.icmp_rate_min 0"},
		{name: "icmp reply ratio above one", mutate: func(c *Config) { c.ICMPReplyRatioMax = 2 }, wantErr: "detect.icmp_reply_ratio_max 2"},
		{name: "infinite spoof rate", mutate: func(c *Config) { c.SpoofRateMin = math.Inf(1) }, wantErr: "detect.spoof_rate_min +Inf"},
		{name: "zero close ratio", mutate: func(c *Config) { c.CloseRatioMax = 0 }, wantErr: "detect.close_ratio_max 0"},
		{name: "zero key enter ticks", mutate: func(c *Config) { c.KeyEnterTicks = 0 }, wantErr: "detect.key_enter_ticks 0"},
		{name: "zero tracked sources", mutate: func(c *Config) { c.MaxSourcesTracked = 0 }, wantErr: "detect.max_sources_tracked 0"},
		{name: "zero tracked ports", mutate: func(c *Config) { c.MaxPortsTracked = 0 }, wantErr: "detect.max_ports_tracked 0"},
		{name: "too many tracked ports", mutate: func(c *Config) { c.MaxPortsTracked = 1 << 17 }, wantErr: "detect.max_ports_tracked 131072: want 1 to 65536"},
		{name: "accounting over its memory cap", mutate: func(c *Config) { c.MaxSourcesTracked = 1 << 20 },
			wantErr: "detect.max_sources_tracked 1048576 and detect.max_ports_tracked 256 over 18 ticks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
			if _, err := NewDetector(c); err == nil {
				t.Fatal("NewDetector accepted an invalid config")
			}
			if _, err := NewKeyDetector(c); err == nil {
				t.Fatal("NewKeyDetector accepted an invalid config")
			}
		})
	}
}

func TestOwnedValidate(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name  string
		owned Owned
		want  string // substring; empty = valid
	}{
		{"none", nil, ""},
		{"addresses and prefixes of both families", Owned{"vnet3": {p("192.0.2.10/32"), p("2001:db8::/64")}}, ""},
		{"a router VM owns everything", Owned{"tap101i0": {p("0.0.0.0/0"), p("::/0")}}, ""},
		{"bad port name", Owned{"vnet/3": {p("192.0.2.10/32")}}, `detect.owned "vnet/3"`},
		{"port name too long", Owned{"a-very-long-port-name": {p("192.0.2.10/32")}}, `detect.owned "a-very-long-port-name"`},
		{"invalid prefix", Owned{"vnet3": {{}}}, "detect.owned.vnet3[0]"},
		{"IPv4-mapped", Owned{"vnet3": {p("::ffff:192.0.2.0/120")}}, "detect.owned.vnet3[0] ::ffff:192.0.2.0/120: write IPv4-mapped addresses as IPv4"},
		{"listed twice", Owned{"vnet3": {p("192.0.2.10/32"), p("2001:db8::10/128"), p("192.0.2.10/32")}}, "detect.owned.vnet3[2] 192.0.2.10/32: listed twice (also detect.owned.vnet3[0])"},
	} {
		err := tc.owned.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}
