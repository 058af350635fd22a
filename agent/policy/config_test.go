package policy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/shaper"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // substring of the error; empty for none
	}{
		{"defaults", func(*Config) {}, ""},
		{"node scope needs no max_sources", func(c *Config) { c.Scope, c.MaxSources = shaper.ScopeNode, 0 }, ""},
		{"mode", func(c *Config) { c.Mode = "enforcing" }, `mode "enforcing"`},
		{"ttl", func(c *Config) { c.TTL = 0 }, "throttle.ttl 0s"},
		{"max_ttl below ttl", func(c *Config) { c.MaxTTL = time.Minute }, "throttle.max_ttl 1m0s: want at least throttle.ttl (10m0s)"},
		{"budget", func(c *Config) { c.MaxActionsPerHour = 0 }, "throttle.max_actions_per_hour 0"},
		{"scope", func(c *Config) { c.Scope = "pod" }, `throttle.scope "pod"`},
		{"max_sources", func(c *Config) { c.MaxSources = 0 }, "throttle.max_sources 0"},
		{"exit_after", func(c *Config) { c.ExitAfter = 0 }, "detect.exit_after 0"},
		{"no ports", func(c *Config) { c.Ports = nil }, "throttle.ports []"},
		{"port 0", func(c *Config) { c.Ports = []uint16{0} }, "throttle.ports 0"},
		{"ssh throttled", func(c *Config) { c.Ports = []uint16{443, 22} }, "throttle.ports 22: the port is whitelisted"},
		{"mesh port throttled", func(c *Config) { c.Ports = []uint16{51820} }, "throttle.ports 51820: the port is whitelisted"},
		{"whitelist port 0", func(c *Config) { c.WhitelistPorts = []uint16{0} }, "whitelist.ports 0"},
		{"whitelist cidr", func(c *Config) { c.WhitelistCIDRs = []netip.Prefix{{}} }, "whitelist.cidrs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := baseConfig()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
			if _, nerr := New(c); (nerr == nil) != (err == nil) {
				t.Fatalf("New() = %v, Validate() = %v", nerr, err)
			}
		})
	}
}

func TestThrottleRejectsMalformedRequests(t *testing.T) {
	tests := []struct {
		name string
		r    Request
		want string
	}{
		{"no id", Request{Reason: ReasonManual, Interface: "eth0"}, `request.id ""`},
		{"detector id", Request{ID: "detector", Reason: ReasonManual, Interface: "eth0"}, `request.id "detector": reserved`},
		{"detector reason", Request{ID: "x", Reason: ReasonDetector, Interface: "eth0"}, `request.reason "detector"`},
		{"no interface", Request{ID: "manual", Reason: ReasonManual}, `request.interface ""`},
		{"negative ttl", Request{ID: "manual", Reason: ReasonManual, Interface: "eth0", TTL: -time.Second}, "request.ttl -1s"},
		{"bad source", Request{ID: "manual", Reason: ReasonManual, Interface: "eth0", Sources: []netip.Prefix{{}}}, "request.sources"},
		{"scope source", Request{ID: "manual", Reason: ReasonManual, Interface: "eth0", Scope: shaper.ScopeSource}, `request.scope "source"`},
		{"scope port with sources", Request{ID: "manual", Reason: ReasonManual, Interface: "vnet3", Scope: shaper.ScopePort,
			Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")}}, "request.sources"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(baseConfig())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Claim(t0, tc.r); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Claim() error = %v, want one containing %q", err, tc.want)
			}
			if ms := e.Mitigations(); len(ms) != 0 {
				t.Fatalf("a malformed request left mitigations %v", ms)
			}
		})
	}
}

func TestAdoptRejectsNonsenseAtomically(t *testing.T) {
	good := Mitigation{Interface: "eth0", Scope: shaper.ScopeNode, Reason: ReasonManual, Owners: []string{"manual"}, Since: t0, Expires: t0.Add(time.Hour)}
	tests := []struct {
		name string
		edit func(*Mitigation)
		want string
	}{
		{"no interface", func(m *Mitigation) { m.Interface = "" }, `mitigations[1].interface ""`},
		{"duplicate", func(*Mitigation) {}, `mitigations[1].interface "eth0": the interface already has a mitigation`},
		{"no owners", func(m *Mitigation) { m.Interface, m.Owners = "eth1", nil }, "mitigations[1].owners []"},
		{"scope", func(m *Mitigation) { m.Interface, m.Scope = "eth1", ScopeAuto }, `mitigations[1].scope "auto"`},
		{"source scope without sources", func(m *Mitigation) { m.Interface, m.Scope = "eth1", shaper.ScopeSource }, "mitigations[1].sources []"},
		{"bad source", func(m *Mitigation) { m.Interface, m.Sources = "eth1", []netip.Prefix{{}} }, "mitigations[1].sources"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(baseConfig())
			if err != nil {
				t.Fatal(err)
			}
			bad := good
			tc.edit(&bad)
			if err := e.Adopt([]Mitigation{good, bad}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Adopt() error = %v, want one containing %q", err, tc.want)
			}
			if ms := e.Mitigations(); len(ms) != 0 {
				t.Fatalf("a failed Adopt left mitigations %v", ms)
			}
		})
	}
}

func TestResultsDoNotAliasState(t *testing.T) {
	e, err := New(baseConfig())
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Claim(t0, webhook("fp1", "eth0", "198.51.100.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	d.Sources[0] = netip.MustParsePrefix("203.0.113.0/24")
	d.Mitigation.Sources[0] = netip.MustParsePrefix("203.0.113.0/24")
	d.Mitigation.Ports[0] = shaper.PortRange{First: 8080, Last: 8080}
	ms := e.Mitigations()
	ms[0].Owners[0] = "changed"
	got := e.Mitigations()[0]
	if got.Sources[0].String() != "198.51.100.0/24" || got.Ports[0] != (shaper.PortRange{First: 80, Last: 80}) || got.Owners[0] != "fp1" {
		t.Fatalf("the engine's state changed through a returned value: %+v", got)
	}
}
