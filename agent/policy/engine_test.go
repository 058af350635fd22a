package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect"

	"github.com/egressguard/egressguard/shaper"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// Offending sources and operator addresses from the documentation ranges.
const (
	srcA = "198.51.100.1"
	srcB = "198.51.100.2"
	srcC = "198.51.100.3"
	srcD = "198.51.100.4"
	srcE = "2001:db8:1::5"
	oper = "192.0.2.10" // inside the whitelisted 192.0.2.0/24
)

func baseConfig() Config {
	return Config{
		Mode:              ModeEnforce,
		TTL:               10 * time.Minute,
		MaxTTL:            24 * time.Hour,
		MaxActionsPerHour: 6,
		Scope:             ScopeAuto,
		MaxSources:        2,
		ExitAfter:         5,
		Ports:             []uint16{443, 80},
		WhitelistPorts:    []uint16{51820},
		WhitelistCIDRs:    []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
	}
}

// scenario is one run of an Engine; ops act on it at offsets from t0.
type scenario struct {
	e      *Engine
	paused bool
}

type op struct {
	at time.Duration
	do func(s *scenario, now time.Time) []string
}

// lines summarises decisions, one line each, prefixed with their offset.
func lines(at time.Duration, ds []Decision) []string {
	var out []string
	for _, d := range ds {
		l := fmt.Sprintf("%s %s %s", at, d.Action, d.Interface)
		if d.Action == ActionRefuse {
			l += " " + string(d.RefusedBecause)
		}
		if d.Cause != "" {
			l += " " + string(d.Cause)
		}
		switch {
		case d.Action == ActionKeep || (d.Action == ActionUpdate && d.Cause != ""):
			l += fmt.Sprintf(" %s owners=%s", spec(d.Scope, d.Sources), strings.Join(d.Mitigation.Owners, ","))
		case d.Action == ActionThrottle || d.Action == ActionUpdate:
			l += " " + spec(d.Scope, d.Sources)
		}
		out = append(out, l)
	}
	return out
}

func spec(s shaper.Scope, ps []netip.Prefix) string {
	if s != shaper.ScopeSource {
		return string(s)
	}
	var b []string
	for _, p := range ps {
		b = append(b, p.String())
	}
	return "source " + strings.Join(b, ",")
}

func step(at time.Duration, os ...Observation) op {
	return op{at, func(s *scenario, now time.Time) []string { return lines(at, s.e.Step(now, os)) }}
}

func flood(iface string, srcs ...string) Observation {
	o := Observation{Interface: iface, State: detect.StateFlood}
	for _, a := range srcs {
		o.Sources = append(o.Sources, netip.MustParseAddr(a))
	}
	return o
}

func clean(iface string) Observation { return Observation{Interface: iface, State: detect.StateClean} }

// steps repeats observation o every second for n intervals from from.
func steps(from time.Duration, n int, o func(i int) Observation) []op {
	return stepsEvery(from, time.Second, n, o)
}

// stepsEvery repeats observation o every interval for n intervals from from.
func stepsEvery(from, interval time.Duration, n int, o func(i int) Observation) []op {
	var out []op
	for i := range n {
		out = append(out, step(from+time.Duration(i)*interval, o(i)))
	}
	return out
}

func throttle(at time.Duration, r Request) op {
	return op{at, func(s *scenario, now time.Time) []string {
		d, err := s.e.Claim(now, r)
		if err != nil {
			return []string{fmt.Sprintf("%s error %v", at, err)}
		}
		return lines(at, []Decision{d})
	}}
}

func release(at time.Duration, id, iface string) op {
	return op{at, func(s *scenario, now time.Time) []string { return lines(at, s.e.Release(now, id, iface)) }}
}

func pause(at time.Duration, p bool) op {
	return op{at, func(s *scenario, _ time.Time) []string { s.paused = p; return nil }}
}

// state reports the mitigations in force.
func state(at time.Duration) op {
	return op{at, func(s *scenario, _ time.Time) []string {
		var out []string
		for _, m := range s.e.Mitigations() {
			out = append(out, fmt.Sprintf("%s state %s %s ports=%v reason=%s owners=%s since=%s expires=%s", at, m.Interface,
				spec(m.Scope, m.Sources), m.Ports, m.Reason, strings.Join(m.Owners, ","), m.Since.Sub(t0), m.Expires.Sub(t0)))
		}
		return out
	}}
}

func webhook(id, iface string, srcs ...string) Request {
	r := Request{ID: id, Reason: ReasonWebhook, Interface: iface}
	for _, s := range srcs {
		r.Sources = append(r.Sources, netip.MustParsePrefix(s))
	}
	return r
}

func manual(iface string, ports ...uint16) Request {
	r := Request{ID: "manual", Reason: ReasonManual, Interface: iface}
	if len(ports) > 0 {
		rs := shaper.Ports(ports...)
		r.Ports = &rs
	}
	return r
}

func seq(parts ...[]op) []op { return slices.Concat(parts...) }

func at(o ...op) []op { return o }

func run(t *testing.T, cfg Config, adopt []Mitigation, ops []op) []string {
	t.Helper()
	s := &scenario{}
	cfg.Paused = func() bool { return s.paused }
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.e = e
	if err := e.Adopt(adopt); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range ops {
		got = append(got, o.do(s, t0.Add(o.at))...)
	}
	return got
}

// cycle floods iface with the source lists in turn.
func cycle(iface string, lists ...[]string) func(int) Observation {
	return func(i int) Observation { return flood(iface, lists[i%len(lists)]...) }
}

func cleans(iface string) func(int) Observation {
	return func(int) Observation { return clean(iface) }
}

func TestEngine(t *testing.T) {
	const s, m, h = time.Second, time.Minute, time.Hour
	tests := []struct {
		name  string
		cfg   func(*Config)
		adopt []Mitigation
		ops   []op
		want  []string
	}{
		{
			name: "a 60-interval flood throttles once, renews, and releases once after exit_after",
			ops: seq(
				// The top-talker list reorders and shrinks: no update may follow.
				steps(0, 60, cycle("eth0", []string{srcA, srcB}, []string{srcB, srcA}, []string{srcA}, []string{srcB})),
				at(state(59*s)),
				steps(60*s, 6, cleans("eth0")),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32,198.51.100.2/32",
				"59s state eth0 source 198.51.100.1/32,198.51.100.2/32 ports=[80 443] reason=detector owners=detector since=0s expires=10m59s",
				"1m4s release eth0 exit_after",
			},
		},
		{
			name: "a clean blip shorter than exit_after does not release; attention counts as clean",
			ops: seq(
				steps(0, 10, cycle("eth0", []string{srcA})),
				steps(10*s, 4, cleans("eth0")),
				steps(14*s, 10, cycle("eth0", []string{srcA})),
				steps(24*s, 4, func(int) Observation { return Observation{Interface: "eth0", State: detect.StateAttention} }),
				at(step(28*s, clean("eth0"))),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32",
				"28s release eth0 exit_after",
			},
		},
		{
			name: "a flood whose observations stop is released when its TTL runs out",
			ops:  seq(steps(0, 3, cycle("eth0", []string{srcA})), at(step(10*m+1*s), step(10*m+2*s))),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32",
				"10m2s release eth0 ttl",
			},
		},
		{
			name: "budget of 2 refuses the third throttle in the hour, once, and allows it after the hour",
			cfg:  func(c *Config) { c.MaxActionsPerHour, c.TTL = 2, 2*h },
			ops: seq(
				at(step(0, flood("eth0", srcA)), step(1*s, flood("eth1", srcB)), step(2*s, flood("eth2", srcC))),
				steps(3*s, 3, cycle("eth2", []string{srcC})),
				at(step(30*m, flood("eth2", srcC)), step(h-1*s, flood("eth2", srcC)), step(h, flood("eth2", srcC))),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32",
				"1s throttle eth1 source 198.51.100.2/32",
				"2s refuse eth2 budget",
				"1h0m0s throttle eth2 source 198.51.100.3/32",
			},
		},
		{
			name: "updates count against the budget; releases are never refused",
			cfg:  func(c *Config) { c.MaxActionsPerHour = 2 },
			ops: seq(
				at(step(0, flood("eth0", srcA)), step(1*s, flood("eth0", srcB)), step(2*s, flood("eth1", srcC))),
				steps(3*s, 5, cleans("eth0")),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32",
				"1s update eth0 source 198.51.100.1/32,198.51.100.2/32",
				"2s refuse eth1 budget",
				"7s release eth0 exit_after",
			},
		},
		{
			name: "a refused update keeps the installed mitigation renewed",
			cfg:  func(c *Config) { c.MaxActionsPerHour = 1 },
			ops: seq(
				at(step(0, flood("eth0", srcA))),
				steps(1*s, 20*60, cycle("eth0", []string{srcA, srcB})),
				at(state(20*m)),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32",
				"1s refuse eth0 budget",
				"20m0s state eth0 source 198.51.100.1/32 ports=[80 443] reason=detector owners=detector since=0s expires=30m0s",
			},
		},
		{
			name: "observe mode takes no automatic action, refuses once per episode, and obeys an operator",
			cfg:  func(c *Config) { c.Mode = ModeObserve },
			ops: seq(
				steps(0, 60, cycle("eth0", []string{srcA})),
				steps(60*s, 5, cleans("eth0")),
				steps(65*s, 3, cycle("eth0", []string{srcA, srcB, srcC})),
				at(throttle(70*s, webhook("fp1", "eth0")), throttle(71*s, manual("eth0")), state(72*s)),
			),
			want: []string{
				"0s refuse eth0 observe",
				"1m5s refuse eth0 observe",
				"1m10s refuse eth0 observe",
				"1m11s throttle eth0 node",
				"1m12s state eth0 node ports=[80 443] reason=manual owners=manual since=1m11s expires=11m11s",
			},
		},
		{
			name: "pause stops new throttles and updates but not releases",
			ops: seq(
				at(pause(0, true)),
				steps(0, 5, cycle("eth0", []string{srcA})),
				at(throttle(5*s, manual("eth1")), pause(6*s, false), step(6*s, flood("eth0", srcA)), pause(7*s, true)),
				steps(7*s, 3, cycle("eth0", []string{srcA, srcB})),
				steps(10*s, 5, cleans("eth0")),
			),
			want: []string{
				"0s refuse eth0 paused",
				"5s refuse eth1 paused",
				"6s throttle eth0 source 198.51.100.1/32",
				"7s refuse eth0 paused",
				"14s release eth0 exit_after",
			},
		},
		{
			name: "max_ttl caps renewals, releases with an alert, and a flood still seen throttles afresh",
			cfg:  func(c *Config) { c.MaxTTL = 30 * m },
			ops: seq(
				stepsEvery(0, m, 25, cycle("eth0", []string{srcA})),
				at(step(25*m, flood("eth0", srcA, srcB)), state(25*m)),
				stepsEvery(26*m, m, 4, cycle("eth0", []string{srcA})),
				at(step(30*m, flood("eth0", srcB))),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32",
				"25m0s update eth0 source 198.51.100.1/32,198.51.100.2/32",
				"25m0s state eth0 source 198.51.100.1/32,198.51.100.2/32 ports=[80 443] reason=detector owners=detector since=0s expires=30m0s",
				"30m0s release eth0 max_ttl",
				"30m0s alert eth0 max_ttl",
				"30m0s throttle eth0 source 198.51.100.2/32",
			},
		},
		{
			name: "after max_ttl a spent budget refuses the re-throttle until the hour slides",
			cfg:  func(c *Config) { c.MaxTTL, c.MaxActionsPerHour = 30*m, 1 },
			ops:  stepsEvery(0, m, 61, cycle("eth0", []string{srcA})),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32",
				"30m0s release eth0 max_ttl",
				"30m0s alert eth0 max_ttl",
				"30m0s refuse eth0 budget",
				"1h0m0s throttle eth0 source 198.51.100.1/32",
			},
		},
		{
			name: "a request TTL above max_ttl is refused; 0 means throttle.ttl",
			cfg:  func(c *Config) { c.MaxTTL = h },
			ops: at(
				throttle(0, Request{ID: "manual", Reason: ReasonManual, Interface: "eth0", TTL: 2 * h}),
				throttle(1*s, Request{ID: "manual", Reason: ReasonManual, Interface: "eth0", TTL: h}),
				throttle(2*s, webhook("fp1", "eth1")),
				state(3*s),
			),
			want: []string{
				"0s refuse eth0 max_ttl",
				"1s throttle eth0 node",
				"2s throttle eth1 node",
				"3s state eth0 node ports=[80 443] reason=manual owners=manual since=1s expires=1h0m1s",
				"3s state eth1 node ports=[80 443] reason=webhook owners=fp1 since=2s expires=10m2s",
			},
		},
		{
			name: "whitelist: the detector never throttles an operator CIDR, nor the node in its place",
			ops: seq(
				steps(0, 3, cycle("eth0", []string{oper})),
				at(step(3*s, flood("eth1", oper, srcA))),
				steps(4*s, 5, cleans("eth0")),
			),
			want: []string{
				"0s refuse eth0 whitelist",
				"3s throttle eth1 source 198.51.100.1/32",
			},
		},
		{
			name: "whitelist: webhook and manual requests are refused whatever the mode",
			cfg:  func(c *Config) { c.Mode = ModeObserve },
			ops: at(
				throttle(0, webhook("fp1", "eth0", "192.0.2.0/28")),
				throttle(1*s, webhook("fp2", "eth0", "192.0.0.0/16")),
				throttle(2*s, manual("eth0", 443, 22)),
				throttle(3*s, manual("eth0", 51820)),
			),
			want: []string{
				"0s refuse eth0 whitelist",
				"1s refuse eth0 whitelist",
				"2s refuse eth0 whitelist",
				"3s refuse eth0 whitelist",
			},
		},
		{
			name: "detector clean does not release a webhook-owned mitigation; webhook resolution then does",
			ops: seq(
				at(throttle(0, webhook("fp1", "eth0"))),
				steps(1*s, 10, cycle("eth0", []string{srcA})),
				steps(11*s, 5, cleans("eth0")),
				at(state(16*s), release(17*s, "fp1", ""), release(18*s, "fp1", "")),
			),
			want: []string{
				"0s throttle eth0 node",
				"1s keep eth0 node owners=fp1,detector",
				"15s keep eth0 exit_after node owners=fp1",
				"16s state eth0 node ports=[80 443] reason=webhook owners=fp1 since=0s expires=10m0s",
				"17s release eth0 released",
			},
		},
		{
			name: "a webhook widens the detector's mitigation; its resolution narrows it back",
			ops: seq(
				steps(0, 3, cycle("eth0", []string{srcA})),
				at(throttle(3*s, webhook("fp1", "eth0")), throttle(4*s, webhook("fp1", "eth0"))),
				steps(5*s, 3, cycle("eth0", []string{srcA})),
				at(release(8*s, "fp1", "eth0")),
				steps(9*s, 5, cleans("eth0")),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32",
				"3s update eth0 node",
				"4s keep eth0 node owners=detector,fp1",
				"8s update eth0 released source 198.51.100.1/32 owners=detector",
				"13s release eth0 exit_after",
			},
		},
		{
			name: "webhook redelivery is a keep and costs no budget; manual is counted but not refused",
			cfg:  func(c *Config) { c.MaxActionsPerHour = 1 },
			ops: at(
				throttle(0, webhook("fp1", "eth0", "198.51.100.0/24")),
				throttle(1*s, webhook("fp1", "eth0", "198.51.100.0/24")),
				throttle(2*s, webhook("fp2", "eth1")),
				throttle(3*s, manual("eth1")),
				step(4*s, flood("eth2", srcA)),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.0/24",
				"1s keep eth0 source 198.51.100.0/24 owners=fp1",
				"2s refuse eth1 budget",
				"3s throttle eth1 node",
				"4s refuse eth2 budget",
			},
		},
		{
			name: "an operator's unthrottle keeps the detector out until the episode ends",
			ops: seq(
				steps(0, 3, cycle("eth0", []string{srcA})),
				at(release(3*s, "", "eth0")),
				steps(3*s, 3, cycle("eth0", []string{srcA})),
				steps(6*s, 5, cleans("eth0")),
				steps(11*s, 1, cycle("eth0", []string{srcA})),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32",
				"3s release eth0 released",
				"11s throttle eth0 source 198.51.100.1/32",
			},
		},
		{
			name: "auto scope grows its sources and turns to node past max_sources",
			ops: at(
				step(0, flood("eth0", srcA)),
				step(1*s, flood("eth0", srcE, srcA)),
				step(2*s, flood("eth0", srcB)),
				step(3*s, flood("eth0", srcC, srcD)),
				step(4*s, flood("eth1")),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32",
				"1s update eth0 source 198.51.100.1/32,2001:db8:1::5/128",
				"2s update eth0 node",
				"4s throttle eth1 node",
			},
		},
		{
			name: "source scope caps at max_sources and refuses a flood it cannot name",
			cfg:  func(c *Config) { c.Scope = shaper.ScopeSource },
			ops: at(
				step(0, flood("eth0", srcA, srcB, srcC)),
				step(1*s, flood("eth0", srcD)),
				step(2*s, flood("eth1")),
				step(3*s, flood("eth1")),
			),
			want: []string{
				"0s throttle eth0 source 198.51.100.1/32,198.51.100.2/32",
				"2s refuse eth1 no_sources",
			},
		},
		{
			name: "node scope ignores the sources",
			cfg:  func(c *Config) { c.Scope = shaper.ScopeNode },
			ops:  at(step(0, flood("eth0", srcA)), step(1*s, flood("eth0", srcB))),
			want: []string{"0s throttle eth0 node"},
		},
		{
			name: "adopted owners: the detector leaves after exit_after, the webhook at its expiry",
			adopt: []Mitigation{{
				Interface: "eth0", Scope: shaper.ScopeSource, Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")},
				Ports: shaper.Ports(80, 443), Reason: ReasonDetector, Owners: []string{"detector", "fp1"}, Since: t0.Add(-10 * m), Expires: t0.Add(5 * m),
			}},
			ops: seq(
				at(state(0)),
				steps(0, 5, cleans("eth0")),
				at(step(5*m)),
			),
			want: []string{
				"0s state eth0 source 198.51.100.1/32 ports=[80 443] reason=detector owners=detector,fp1 since=-10m0s expires=5m0s",
				"4s keep eth0 exit_after source 198.51.100.1/32 owners=fp1",
				"5m0s release eth0 ttl",
			},
		},
		{
			name: "adopted mitigations past max_ttl are released with an alert and count against the budget",
			cfg:  func(c *Config) { c.MaxTTL, c.MaxActionsPerHour = h, 2 },
			adopt: []Mitigation{
				{Interface: "eth0", Scope: shaper.ScopeNode, Reason: ReasonManual, Owners: []string{"manual"}, Since: t0.Add(-2 * h), Expires: t0.Add(h)},
				{Interface: "eth1", Scope: shaper.ScopeNode, Reason: ReasonWebhook, Owners: []string{"fp1"}, Since: t0.Add(-30 * m), Expires: t0.Add(m)},
				{Interface: "eth2", Scope: shaper.ScopeNode, Reason: ReasonWebhook, Owners: []string{"fp2"}, Since: t0.Add(-20 * m), Expires: t0.Add(m)},
			},
			ops: at(step(0, flood("eth3", srcA))),
			want: []string{
				"0s release eth0 max_ttl",
				"0s alert eth0 max_ttl",
				"0s refuse eth3 budget",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			got := run(t, cfg, tc.adopt, tc.ops)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}

// TestManualRateIsPartOfTheClaim: an operator's --rate is decided by the
// policy like scope and ports: a new rate on a mitigation in force is an
// update, the lowest explicit rate wins, and releasing its owner restores
// throttle.rate (0) for those who remain.
func TestManualRateIsPartOfTheClaim(t *testing.T) {
	e, err := New(baseConfig())
	if err != nil {
		t.Fatal(err)
	}
	must := func(d Decision, err error) Decision {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := must(e.Claim(t0, Request{ID: "fp1", Reason: ReasonWebhook, Interface: "eth0"}))
	if d.Action != ActionThrottle || d.Mitigation.RateBps != 0 {
		t.Fatalf("webhook: %s rate %d, want throttle at throttle.rate (0)", d.Action, d.Mitigation.RateBps)
	}
	d = must(e.Claim(t0, Request{ID: "manual", Reason: ReasonManual, Interface: "eth0", RateBps: 2_000_000}))
	if d.Action != ActionUpdate || d.Mitigation.RateBps != 2_000_000 {
		t.Fatalf("manual --rate 2mbit: %s rate %d, want update to 2000000", d.Action, d.Mitigation.RateBps)
	}
	d = must(e.Claim(t0, Request{ID: "manual", Reason: ReasonManual, Interface: "eth0", RateBps: 2_000_000}))
	if d.Action != ActionKeep {
		t.Fatalf("same rate again: %s, want keep", d.Action)
	}
	ds := e.Release(t0, "manual", "eth0")
	if len(ds) != 1 || ds[0].Action != ActionUpdate || ds[0].Mitigation.RateBps != 0 {
		t.Fatalf("release manual: %+v, want one update back to throttle.rate", ds)
	}
}

// TestRestoreInterfaceUndoesOneRefusedDecision: when the kernel refuses a
// decision, the engine goes back to what it held on that interface, the
// budget is given back, and the other interfaces keep their decisions.
func TestRestoreInterfaceUndoesOneRefusedDecision(t *testing.T) {
	cfg := baseConfig()
	cfg.MaxActionsPerHour = 2
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Claim(t0, Request{ID: "fp1", Reason: ReasonWebhook, Interface: "eth0"}); err != nil {
		t.Fatal(err)
	}
	before := e.Snapshot()
	ds := e.Step(t0, []Observation{flood("eth1", srcA), flood("eth0", srcB)})
	if len(ds) != 2 {
		t.Fatalf("step: %v", ds)
	}
	e.RestoreInterface(before, "eth1") // the kernel refused eth1's new throttle
	got := e.Mitigations()
	if len(got) != 1 || got[0].Interface != "eth0" || len(got[0].Owners) != 2 {
		t.Fatalf("after restoring eth1: %+v; want eth0 only, with the detector's claim kept", got)
	}
	d, err := e.Claim(t0, Request{ID: "fp2", Reason: ReasonWebhook, Interface: "eth2"})
	if err != nil || d.Action != ActionThrottle {
		t.Fatalf("the budget spent on the refused throttle was not given back: %s %s", d.Action, d.Detail)
	}
}

func TestBudgetLeft(t *testing.T) {
	cfg := baseConfig()
	cfg.MaxActionsPerHour = 2
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Duration
		obs  []Observation
		want int
	}{
		{0, nil, 2},
		{0, []Observation{flood("eth0", srcA)}, 1},
		{time.Second, []Observation{flood("eth1", srcB)}, 0},
		{2 * time.Second, []Observation{flood("eth2", srcC)}, 0}, // refused: never below 0
		{time.Hour, nil, 1}, // the first action left the window
		{time.Hour + time.Second, nil, 2},
	} {
		e.Step(t0.Add(tt.at), tt.obs)
		if got := e.BudgetLeft(t0.Add(tt.at)); got != tt.want {
			t.Errorf("at %s: BudgetLeft = %d, want %d", tt.at, got, tt.want)
		}
	}
}
