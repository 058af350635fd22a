package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"slices"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/alerts"
	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/internal/httpjson"
	"github.com/egressguard/egressguard/shaper"
)

// Handler serves /metrics, /healthz, /readyz, /api/v1/status and the
// Alertmanager webhook at /api/v1/alertmanager.
func (a *Agent) Handler() (http.Handler, error) {
	wh, err := alerts.NewHandler(alerts.HandlerConfig{
		Token:   a.webhookToken,
		Node:    a.deps.Node,
		Watched: func() []string { return a.deps.Interfaces },
		Sink:    webhookSink{a},
		Logger:  a.log,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		ready := a.ready
		a.mu.Unlock()
		if !ready {
			http.Error(w, "reconciling", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /api/v1/status", a.serveStatus)
	mux.Handle("/api/v1/alertmanager", wh)
	return mux, nil
}

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

// Status is the agent's full status: the state file and kernel joined with
// each watched interface's latest verdict and evidence.
func (a *Agent) Status(ctx context.Context) (control.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.ctl.Status(ctx, a.cfg.Mode)
	if err != nil {
		return control.Status{}, err
	}
	st.Agent = true
	for _, name := range a.deps.Interfaces {
		v, ok := a.last[name]
		if !ok {
			st.Interfaces = append(st.Interfaces, control.InterfaceStatus{Name: name, Verdict: "clean"})
			continue
		}
		e := v.Verdict.Evidence
		is := control.InterfaceStatus{
			Name: name, TxBps: e.TxBps, TxPps: e.TxPps, SynOutPps: e.SynOutPps, SynAckInPps: e.SynAckInPps,
			Verdict: string(v.Verdict.State), Reasons: v.Verdict.Reasons, Evidence: &e,
		}
		is.Attribution = v.Attribution
		st.Interfaces = append(st.Interfaces, is)
	}
	return st, nil
}

func (a *Agent) serveStatus(w http.ResponseWriter, r *http.Request) {
	st, err := a.Status(r.Context())
	if err != nil {
		httpjson.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, st)
}

// webhookSink turns Alertmanager requests into policy requests owned by the
// alert's fingerprint, so a repeat renews and a resolution releases only
// what that alert asked for.
type webhookSink struct{ a *Agent }

func (s webhookSink) Mitigate(ctx context.Context, r alerts.Request) error {
	var errs []error
	for _, iface := range r.Interfaces {
		req := policy.Request{ID: r.Fingerprint, Reason: policy.ReasonWebhook, Interface: iface, Sources: s.a.floodSources(iface)}
		d, err := s.a.Request(ctx, req, RequestOptions{})
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

// RequestOptions are what a manual request adds to the policy's view.
type RequestOptions struct {
	RateBps uint64 // 0 = throttle.rate
	Force   bool   // replace a foreign root qdisc
}

// Request passes a webhook or manual throttle through the policy and acts on
// its decision. A malformed request is an error and changes nothing.
func (a *Agent) Request(ctx context.Context, r policy.Request, o RequestOptions) (policy.Decision, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, err := a.engine.Claim(a.now(), r)
	if err != nil {
		return policy.Decision{}, err
	}
	if o.RateBps != 0 && d.Action != policy.ActionRefuse {
		a.rates[r.Interface] = o.RateBps
	}
	if d.Action == policy.ActionKeep && o.RateBps != 0 {
		d.Action = policy.ActionUpdate // a new rate changes the kernel
	}
	a.execute(ctx, []policy.Decision{d}, o.Force)
	if d.Action != policy.ActionRefuse {
		if _, ok := a.engineMitigation(r.Interface); !ok {
			return d, fmt.Errorf("%s: the kernel refused the throttle; see the agent's log", r.Interface)
		}
	}
	return d, nil
}

// Release drops owner id's claim on iface ("" = every owner; iface "" =
// every interface) and acts on what follows.
func (a *Agent) Release(ctx context.Context, id, iface string) []policy.Decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	ds := a.engine.Release(a.now(), id, iface)
	a.execute(ctx, ds, false)
	return ds
}

// ReleaseAll is `unthrottle --all`: every owner on every interface, and any
// egressguard layout without a record.
func (a *Agent) ReleaseAll(ctx context.Context) error {
	a.Release(ctx, "", "")
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctl.UnthrottleAll(ctx)
}
