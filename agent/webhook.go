package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/alerts"
	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/shaper"
)

// webhookToken reads the token file on every request so a rotated token
// takes effect; a missing file refuses every request.
func (a *Agent) webhookToken() []byte {
	a.mu.Lock()
	path := a.cfg.Webhook.TokenFile
	a.mu.Unlock()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return b
}

// webhookSink turns Alertmanager requests into policy requests owned by the
// alert's fingerprint, so a repeat renews and a resolution releases only
// what that alert asked for.
type webhookSink struct{ a *Agent }

func (s webhookSink) Mitigate(ctx context.Context, r alerts.Request) error {
	var errs []error
	for _, iface := range r.Interfaces {
		req := policy.Request{ID: r.Fingerprint, Reason: policy.ReasonWebhook, Interface: iface, Sources: s.a.floodSources(iface)}
		d, err := s.a.Request(ctx, req, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if d.Action == policy.ActionRefuse {
			errs = append(errs, fmt.Errorf("%s: %s: %w", iface, d.Detail, policy.ErrRefused))
		}
	}
	return errors.Join(errs...)
}

func (s webhookSink) Release(ctx context.Context, r alerts.Request) error {
	for _, iface := range r.Interfaces {
		s.a.Release(ctx, r.Fingerprint, iface)
	}
	return nil
}

// floodSources narrows a webhook throttle to the sources the agent's own
// verdict names, so that an alert does not throttle every tenant on the node
// when one of them floods. It returns nil (scope node) when throttle.scope
// is node, when the interface is not in flood, or when the non-whitelisted
// sources are more than throttle.max_sources or none.
func (a *Agent) floodSources(iface string) []netip.Prefix {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := a.last[iface].Verdict
	if a.cfg.Throttle.Scope == shaper.ScopeNode || v.State != detect.StateFlood {
		return nil
	}
	white := config.Prefixes(a.cfg.Whitelist.CIDRs)
	var out []netip.Prefix
	for _, s := range v.Evidence.TopSources {
		p := netip.PrefixFrom(s.Addr, s.Addr.BitLen())
		if !slices.ContainsFunc(white, p.Overlaps) {
			out = append(out, p)
		}
	}
	if len(out) > a.cfg.Throttle.MaxSources {
		return nil
	}
	return out
}
