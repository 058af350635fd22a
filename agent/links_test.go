package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/internal/netif"
)

// fakeBinder binds "up0" to whatever index the test says is current.
type fakeBinder struct {
	index   int // 0: no such interface
	capt    *fakeCapture
	binds   int
	stopped int
	detect  detect.Config // what the captures were last given
	owned   detect.Owned
}

func (b *fakeBinder) Bind(name string) (Capture, int, func(), error) {
	if b.index == 0 {
		return nil, 0, nil, errors.New("Link not found")
	}
	b.binds++
	return b.capt, b.index, func() { b.stopped++ }, nil
}

func (b *fakeBinder) Reconfigure(cfg detect.Config, owned detect.Owned) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := owned.Validate(); err != nil {
		return err
	}
	b.detect, b.owned = cfg, owned
	return nil
}

func readyz(t *testing.T, a *Agent) (int, string) {
	t.Helper()
	h, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, rec.Body.String()
}

// TestLinkEvents: the watched up0 (ifindex 5) is throttled, then deleted:
// its capture stops, /readyz says why with 503, the blind metric is 1 and
// status says blind. Recreated as ifindex 9, the capture is bound to it
// and the mitigation installed again; a rename of 9 away blinds it again,
// and a name that moves while the old interface lives (a swap) re-binds.
func TestLinkEvents(t *testing.T) {
	ctx := context.Background()
	capt := &fakeCapture{}
	b := &fakeBinder{index: 5, capt: capt}
	a, _, kern := newTestAgentWith(t, "up0", &fakeKernel{}, nil, func(d *Deps) { d.Binder, d.Captures = b, map[string]Capture{} })
	a.bindAll(ctx)
	if err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(t, a); code != http.StatusOK {
		t.Fatalf("bound at start: /readyz %d %q", code, body)
	}
	for range 4 {
		capt.next = flood(150_000)
		a.Tick(ctx)
	}
	if !kern.installed || kern.applies != 1 {
		t.Fatalf("flood not throttled: %d applies", kern.applies)
	}

	kern.installed = false // the kernel drops the qdiscs with the device
	kern.iface = "gone0"   // and up0 is in no dump of root qdiscs
	a.OnLink(ctx, netif.LinkEvent{Index: 5, Name: "up0", Gone: true})
	code, body := readyz(t, a)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "up0: blind since") || !strings.Contains(body, "interface 5 was deleted") {
		t.Errorf("deleted: /readyz %d %q, want 503 naming up0 and why", code, body)
	}
	if b.stopped != 1 || a.deps.Captures["up0"] != nil {
		t.Errorf("deleted: %d stops, capture %v; want the capture stopped and unbound", b.stopped, a.deps.Captures["up0"])
	}
	if v := gaugeValue(t, a, "egressguard_interface_blind"); v != 1 {
		t.Errorf("deleted: egressguard_interface_blind = %v, want 1", v)
	}
	st, err := a.Status(ctx)
	if err != nil || len(st.Interfaces) != 1 || st.Interfaces[0].Blind == "" {
		t.Errorf("deleted: status %+v, %v; want up0 blind", st.Interfaces, err)
	}
	a.Tick(ctx) // nothing to read: no panic, mitigation kept by the policy

	b.index, kern.iface = 9, "up0"
	a.OnLink(ctx, netif.LinkEvent{Index: 9, Name: "up0"})
	if code, body := readyz(t, a); code != http.StatusOK {
		t.Errorf("recreated: /readyz %d %q, want 200", code, body)
	}
	if !kern.installed || kern.applies != 2 {
		t.Errorf("recreated: installed %v after %d applies; want the mitigation re-applied", kern.installed, kern.applies)
	}
	if v := gaugeValue(t, a, "egressguard_interface_blind"); v != 0 {
		t.Errorf("recreated: egressguard_interface_blind = %v, want 0", v)
	}
	a.OnLink(ctx, netif.LinkEvent{Index: 9, Name: "up0"}) // a flag change: nothing to do
	if b.binds != 2 {
		t.Errorf("%d binds after a repeated event, want 2", b.binds)
	}

	a.OnLink(ctx, netif.LinkEvent{Index: 9, Name: "old0"})
	if code, body := readyz(t, a); code != http.StatusServiceUnavailable || !strings.Contains(body, "renamed to old0") {
		t.Errorf("renamed away: /readyz %d %q", code, body)
	}
	b.index = 12
	a.OnLink(ctx, netif.LinkEvent{Index: 12, Name: "up0"})
	b.index = 13
	a.OnLink(ctx, netif.LinkEvent{Index: 13, Name: "up0"}) // swapped in while 12 still exists
	if l := a.links["up0"]; l.index != 13 || l.blind != "" {
		t.Errorf("after a swap: bound to %d (blind %q), want 13", l.index, l.blind)
	}
}

// TestMissingAtStartIsBlind: a configured interface that does not exist yet
// leaves the agent running but not ready.
func TestMissingAtStartIsBlind(t *testing.T) {
	b := &fakeBinder{capt: &fakeCapture{}}
	a, _, _ := newTestAgentWith(t, "up0", &fakeKernel{}, nil, func(d *Deps) { d.Binder, d.Captures = b, map[string]Capture{} })
	a.bindAll(context.Background())
	if err := a.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(t, a); code != http.StatusServiceUnavailable || !strings.Contains(body, "no capture: Link not found") {
		t.Errorf("/readyz %d %q, want 503 naming the missing interface", code, body)
	}
}

func gaugeValue(t *testing.T, a *Agent, name string) float64 {
	t.Helper()
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
