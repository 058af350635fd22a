package agent

import (
	"context"
	"errors"
	"testing"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/alerts"
)

// TestUnwatchedTargetsRefused: a webhook alert naming the loopback or an
// existing but unwatched bridge, and a manual request for either, are
// refused with reason "target" (a refusal, never a retryable error) and
// nothing reaches the kernel.
func TestUnwatchedTargetsRefused(t *testing.T) {
	a, _, kern := newTestAgent(t, nil)
	ctx := context.Background()
	for _, iface := range []string{"lo", "br0"} {
		err := webhookSink{a}.Mitigate(ctx, alerts.Request{Fingerprint: "f-" + iface, Action: alerts.ActionThrottle, Interfaces: []string{iface}})
		if !errors.Is(err, policy.ErrRefused) {
			t.Errorf("webhook for %s: %v, want a refusal", iface, err)
		}
		d, err := a.Request(ctx, policy.Request{ID: "manual", Reason: policy.ReasonManual, Interface: iface})
		if err != nil || d.Action != policy.ActionRefuse || d.RefusedBecause != policy.RefusedTarget {
			t.Errorf("manual request for %s: %+v, %v; want refused because target", iface, d, err)
		}
	}
	if kern.applies != 0 {
		t.Errorf("%d applies, want none", kern.applies)
	}
	d, err := a.Request(ctx, policy.Request{ID: "manual", Reason: policy.ReasonManual, Interface: "up0"})
	if err != nil || d.Action == policy.ActionRefuse {
		t.Errorf("the watched up0: %+v, %v; want it throttled", d, err)
	}
}
