package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/alerts"
	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/shaper"
)

// webhookToken reads the token file on every request so a rotated token
// takes effect; a missing, empty or unsafe file (alerts.ReadTokenFile)
// refuses every request.
func (a *Agent) webhookToken() []byte {
	a.mu.Lock()
	path := a.cfg.Webhook.TokenFile
	a.mu.Unlock()
	tok, err := alerts.ReadTokenFile(path)
	if err != nil {
		return nil
	}
	return tok
}

// CheckWebhookToken is the start-up check of webhook.token_file: it logs
// whether the webhook is enabled and returns an error, naming the file and
// its mode or owner, when the file is group- or world-writable,
// world-readable or owned by another user, so that the agent refuses to
// start with a token any local user could read or set. A missing or empty
// file only disables the webhook.
func CheckWebhookToken(path string, log *slog.Logger) error {
	if path == "" {
		log.Warn("webhook disabled: webhook.token_file is empty; every webhook request is refused")
		return nil
	}
	_, err := alerts.ReadTokenFile(path)
	switch {
	case err == nil:
		log.Info("webhook enabled", "token_file", path)
		return nil
	case errors.Is(err, alerts.ErrNoToken):
		log.Warn("webhook disabled: every webhook request is refused", "token_file", path, "reason", err.Error())
		return nil
	default:
		return err
	}
}

// webhookSink turns Alertmanager requests into policy requests owned by the
// alert's fingerprint, so a repeat renews and a resolution releases only
// what that alert asked for.
type webhookSink struct{ a *Agent }

// Throttle asks the policy for a throttle on each interface the alert names.
// What can never succeed however often Alertmanager retries (an interface
// this node does not have, a malformed request, a foreign root qdisc the
// webhook may not replace, a policy refusal) wraps policy.ErrRefused, which
// the handler answers 2xx and counts; only a transient kernel or disk
// failure is an error Alertmanager should retry.
func (s webhookSink) Mitigate(ctx context.Context, r alerts.Request) error {
	var errs []error
	for _, iface := range r.Interfaces {
		if _, err := net.InterfaceByName(iface); err != nil {
			errs = append(errs, fmt.Errorf("%s: no such interface on this node: %w", iface, policy.ErrRefused))
			continue
		}
		req := policy.Request{ID: r.Fingerprint, Reason: policy.ReasonWebhook, Interface: iface, Sources: s.a.floodSources(iface)}
		if err := req.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w: %w", iface, err, policy.ErrRefused))
			continue
		}
		d, err := s.a.Request(ctx, req)
		switch {
		case errors.Is(err, shaper.ErrForeign):
			errs = append(errs, fmt.Errorf("%w: %w", err, policy.ErrRefused))
		case err != nil:
			errs = append(errs, err)
		case d.Action == policy.ActionRefuse:
			errs = append(errs, fmt.Errorf("%s: %s: %w", iface, d.Detail, policy.ErrRefused))
		}
	}
	return errors.Join(errs...)
}

// Release drops the alert's claim on each interface; a release the kernel or
// the state file refused is retried by Alertmanager and by repair.
func (s webhookSink) Release(ctx context.Context, r alerts.Request) error {
	var errs []error
	for _, iface := range r.Interfaces {
		if _, err := s.a.Release(ctx, r.Fingerprint, iface); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
	if len(out) > int(a.cfg.Throttle.MaxSources) {
		return nil
	}
	return out
}
