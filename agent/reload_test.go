package agent

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/config"
)

// TestReloadGivesTheCapturesTheDetectKeys: a reload hands the captures the
// per-key config (here the tracked-source bound) and the configured owned
// prefixes; a reload whose detect keys cannot work is refused and leaves
// the captures and the agent on the old config.
func TestReloadGivesTheCapturesTheDetectKeys(t *testing.T) {
	b := &fakeBinder{capt: &fakeCapture{}}
	a, _, _ := newTestAgentWith(t, "up0", &fakeKernel{}, nil, func(d *Deps) { d.Binder, d.Captures = b, map[string]Capture{} })
	if b.detect != a.cfg.DetectorConfig() {
		t.Fatalf("captures start with %+v, want the config's %+v", b.detect, a.cfg.DetectorConfig())
	}
	vm := netip.MustParsePrefix("192.0.2.10/32")
	next := a.cfg
	next.Detect.MaxSourcesTracked = 64
	next.Detect.Owned = map[string][]config.Prefix{"vnet3": {config.Prefix(vm)}}
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if b.detect.MaxSourcesTracked != 64 || !slices.Equal(b.owned["vnet3"], []netip.Prefix{vm}) {
		t.Fatalf("after reload the captures have max_sources_tracked %d, owned %v; want 64 and vnet3 %s", b.detect.MaxSourcesTracked, b.owned, vm)
	}
	bad := next
	bad.Detect.Tick = config.Duration(5 * time.Millisecond)
	bad.Detect.MaxSourcesTracked = 128
	err := a.Reload(bad)
	if err == nil || !strings.Contains(err.Error(), "detect.tick 5ms") {
		t.Fatalf("Reload with detect.tick 5ms: %v, want a refusal naming the field and value", err)
	}
	if b.detect.MaxSourcesTracked != 64 || b.detect.Tick != 50*time.Millisecond || a.cfg.Detect.MaxSourcesTracked != 64 {
		t.Errorf("after a refused reload the captures have %+v (agent max_sources_tracked %d), want the previous config", b.detect, a.cfg.Detect.MaxSourcesTracked)
	}
}
