package agent

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/shaper"
)

// fakeCapture returns whatever the test put in next.
type fakeCapture struct {
	next    detect.Counts
	dropped uint64
}

func (c *fakeCapture) Collect() detect.Counts { return c.next }

func (c *fakeCapture) Dropped() uint64 { return c.dropped }

type noTx struct{}

func (noTx) Read(time.Time) (map[string]TxRates, error) { return nil, nil }

// fakeKernel models the throttle: while installed, what the flood offers
// beyond what the class lets through shows up as drops.
type fakeKernel struct {
	installed      bool
	applies, drops uint64
	removes        int
	lastSources    []netip.Prefix
	lastSpec       shaper.Spec
	lastRate       uint64
	foreign        string // an operator's root qdisc; the layout leaves it alone
	applyErr       error  // what Apply fails with, when set
	iface          string // the one interface Roots reports; default up0
	onRemove       func() // runs after the kernel changed
}

func (k *fakeKernel) Apply(ctx context.Context, p shaper.Plan, _ shaper.ApplyOptions) (shaper.ApplyResult, error) {
	if err := ctx.Err(); err != nil {
		return shaper.ApplyResult{}, err // as the shaper does
	}
	if k.applyErr != nil {
		return shaper.ApplyResult{}, k.applyErr
	}
	k.applies++
	k.lastSources, k.lastRate, k.lastSpec = p.Spec.Sources, p.Spec.Rate, p.Spec
	replaced := !k.installed
	k.installed = true
	return shaper.ApplyResult{Installed: replaced, Changed: true}, nil
}

func (k *fakeKernel) Remove(context.Context, string, shaper.Previous) error {
	if k.onRemove != nil {
		defer k.onRemove()
	}
	k.installed = false
	k.removes++
	return nil
}

func (k *fakeKernel) Inspect(context.Context, string) (shaper.Installed, error) {
	return shaper.Installed{Ours: k.installed, Intact: k.installed, RootKind: k.rootKind(), ThrottledStats: shaper.ClassStats{Drops: k.drops}}, nil
}

func (k *fakeKernel) Roots(context.Context) (map[string]shaper.Installed, error) {
	name := k.iface
	if name == "" {
		name = "up0"
	}
	return map[string]shaper.Installed{name: {Ours: k.installed, Intact: k.installed, RootKind: k.rootKind()}}, nil
}

func (k *fakeKernel) rootKind() string {
	if k.foreign != "" {
		return k.foreign
	}
	return "noqueue"
}

func newTestAgent(t *testing.T, mutate func(*config.Config)) (*Agent, *fakeCapture, *fakeKernel) {
	t.Helper()
	return newTestAgentOn(t, "up0", &fakeKernel{}, mutate)
}

// newTestAgentOn builds an agent watching iface over kern, with its state
// directory in a fresh temporary directory unless mutate sets one.
func newTestAgentOn(t *testing.T, iface string, kern *fakeKernel, mutate func(*config.Config)) (*Agent, *fakeCapture, *fakeKernel) {
	t.Helper()
	return newTestAgentWith(t, iface, kern, mutate, nil)
}

// newTestAgentWith is newTestAgentOn with the adapters changed by edit.
func newTestAgentWith(t *testing.T, iface string, kern *fakeKernel, mutate func(*config.Config), edit func(*Deps)) (*Agent, *fakeCapture, *fakeKernel) {
	t.Helper()
	kern.iface = iface
	cfg := config.Default()
	cfg.Mode = config.ModeEnforce
	cfg.StateDir = t.TempDir()
	cfg.Detect.ExitAfter = 5
	if mutate != nil {
		mutate(&cfg)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	capt := &fakeCapture{}
	d := Deps{
		Config: cfg, Node: "node1", Interfaces: []string{iface}, Captures: map[string]Capture{iface: capt},
		Tx: noTx{}, Kernel: kern, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { now = now.Add(time.Second); return now },
	}
	if edit != nil {
		edit(&d)
	}
	a, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	return a, capt, kern
}

var flooder = netip.MustParseAddr("198.19.128.10")

func flood(synOut uint64) detect.Counts {
	return detect.Counts{SynOut: synOut, Destinations: synOut, Sources: map[netip.Addr]uint64{flooder: synOut}, DstPorts: map[uint16]uint64{443: synOut}}
}

// TestThrottledFloodJudgedByOfferedLoad: packet taps run after the qdisc, so
// once throttled the capture sees only what HTB lets through (here 1000 SYN/s,
// under syn_rate_min). The drops read back from the class carry the rest, so
// the flood keeps its verdict: one throttle for the whole flood, no release
// while it lasts, one release after it ends.
func TestThrottledFloodJudgedByOfferedLoad(t *testing.T) {
	a, capt, kern := newTestAgent(t, nil)
	ctx := context.Background()
	for i := range 60 {
		if kern.installed {
			capt.next = flood(1000)
			kern.drops += 149_000
		} else {
			capt.next = flood(150_000)
		}
		a.Tick(ctx)
		if i >= 3 && !kern.installed {
			t.Fatalf("interval %d: not throttled during the flood (applies %d, removes %d)", i, kern.applies, kern.removes)
		}
	}
	if kern.applies != 1 || kern.removes != 0 {
		t.Fatalf("during the flood: %d applies, %d removes; want exactly one throttle and no release", kern.applies, kern.removes)
	}
	if got := kern.lastSources; len(got) != 1 || got[0] != netip.PrefixFrom(flooder, 32) {
		t.Errorf("scope auto with one source: sources %v, want the flooder only", got)
	}
	released := -1
	for i := range 10 {
		capt.next = detect.Counts{}
		a.Tick(ctx)
		if !kern.installed && released < 0 {
			released = i + 1
		}
	}
	if released != 5 || kern.removes != 1 {
		t.Fatalf("released after %d clean intervals (%d removes); want after exit_after = 5, once", released, kern.removes)
	}
	if n := testutil.CollectAndCount(a.metrics.drift); n != 0 {
		t.Fatalf("%d drift series in a run without drift: repair must find kernel, record and policy agreeing", n)
	}
}

func TestObserveModeChangesNothing(t *testing.T) {
	a, capt, kern := newTestAgent(t, func(c *config.Config) { c.Mode = config.ModeObserve })
	for range 20 {
		capt.next = flood(150_000)
		a.Tick(context.Background())
	}
	if kern.applies != 0 || a.last["up0"].Verdict.State != detect.StateFlood {
		t.Fatalf("observe: %d applies, verdict %s; want flood judged and nothing applied", kern.applies, a.last["up0"].Verdict.State)
	}
}

func TestWebhookNarrowsToVerdictSources(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		flood  bool
		want   int // sources; 0 = scope node
	}{
		{"auto names the flooder", nil, true, 1},
		{"no flood verdict: node", nil, false, 0},
		{"scope node stays node", func(c *config.Config) { c.Throttle.Scope = "node" }, true, 0},
		{"whitelisted flooder dropped", func(c *config.Config) {
			c.Whitelist.CIDRs = []config.Prefix{config.Prefix(netip.MustParsePrefix("198.19.128.0/24"))}
		}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, capt, _ := newTestAgent(t, func(c *config.Config) {
				c.Mode = config.ModeObserve
				if tc.mutate != nil {
					tc.mutate(c)
				}
			})
			if tc.flood {
				capt.next = flood(150_000)
			}
			for range 4 {
				a.Tick(context.Background())
			}
			if got := a.floodSources("up0"); len(got) != tc.want {
				t.Fatalf("floodSources = %v, want %d sources", got, tc.want)
			}
		})
	}
}
