package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/egressguard/egressguard/alerts"
)

// Handler serves /metrics, /healthz, /readyz, /api/v1/status and the
// Alertmanager webhook at /api/v1/alertmanager. Metrics, health and status
// are open; the status's attribution (pids, exe paths, command lines, source
// MACs) needs the webhook's bearer token, as the webhook does, since listen
// may face the network (the DaemonSet binds 0.0.0.0). The CLI's root-only
// socket always shows it.
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
		ready, why := a.readiness()
		if !ready {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /api/v1/status", a.serveStatus(func(r *http.Request) bool {
		return alerts.Authenticate(r, a.webhookToken()) == ""
	}))
	mux.Handle("/api/v1/alertmanager", wh)
	return mux, nil
}

// ServeListen serves Handler on l until ctx ends, within the HTTP limits
// of Serve and httpConnLimit connections.
func (a *Agent) ServeListen(ctx context.Context, l net.Listener) error {
	h, err := a.Handler()
	if err != nil {
		return err
	}
	return Serve(ctx, l, h, httpConnLimit(), a.metrics.evicted.Inc)
}
