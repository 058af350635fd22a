package detect

import (
	"math"
	"strings"
	"testing"
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
		})
	}
}
