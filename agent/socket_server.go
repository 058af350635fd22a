package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/internal/httpjson"
)

// ServeSocket serves the CLI on a unix socket at path, mode 0600, until ctx
// ends. A stale socket file from a crashed agent is replaced.
func (a *Agent) ServeSocket(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("agent: socket dir: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("agent: socket %s: another agent is running", path)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("agent: listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("agent: chmod %s: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.serveStatus)
	mux.HandleFunc("POST /v1/throttle", a.serveThrottle)
	mux.HandleFunc("POST /v1/unthrottle", a.serveUnthrottle)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
		os.Remove(path)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (a *Agent) serveThrottle(w http.ResponseWriter, r *http.Request) {
	var req ThrottleRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, "decode request: "+err.Error())
		return
	}
	d, err := a.Request(r.Context(), policy.Request{
		ID: string(policy.ReasonManual), Reason: policy.ReasonManual, Interface: req.Interface,
		Sources: req.Sources, Ports: req.Ports, TTL: time.Duration(req.TTLSeconds * float64(time.Second)), RateBps: req.RateBps,
	}, req.Force)
	if err != nil {
		httpjson.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	ans := ThrottleAnswer{Action: string(d.Action), Refused: string(d.RefusedBecause), Detail: d.Detail, Mitigation: d.Mitigation}
	code := http.StatusOK
	if d.Action == policy.ActionRefuse {
		code = http.StatusConflict
	}
	httpjson.Write(w, code, ans)
}

func (a *Agent) serveUnthrottle(w http.ResponseWriter, r *http.Request) {
	var req UnthrottleRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, "decode request: "+err.Error())
		return
	}
	if req.All {
		if err := a.ReleaseAll(r.Context()); err != nil {
			httpjson.WriteError(w, http.StatusInternalServerError, err.Error())
			return
		}
		httpjson.Write(w, http.StatusOK, struct{}{})
		return
	}
	if len(a.Release(r.Context(), "", req.Interface)) == 0 {
		// No owner in the policy: clean a layout without a record, if any.
		a.mu.Lock()
		err := a.ctl.Unthrottle(r.Context(), req.Interface)
		a.mu.Unlock()
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, control.ErrNotThrottled) {
				code = http.StatusNotFound
			}
			httpjson.WriteError(w, code, err.Error())
			return
		}
	}
	httpjson.Write(w, http.StatusOK, struct{}{})
}
