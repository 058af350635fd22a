package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/internal/httpjson"
	"github.com/egressguard/egressguard/internal/netif"
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
	mux.HandleFunc("GET /v1/status", a.serveStatus(func(*http.Request) bool { return true }))
	mux.HandleFunc("POST /v1/throttle", a.serveThrottle)
	mux.HandleFunc("POST /v1/unthrottle", a.serveUnthrottle)
	defer os.Remove(path)
	return Serve(ctx, l, mux, socketMaxConns, nil)
}

// socketMaxBody bounds a CLI request on the socket.
const socketMaxBody = 1 << 16

// socketMaxConns bounds the socket's concurrent connections: the CLI opens
// one per command.
const socketMaxConns = 32

// decodeRequest reads one JSON request of at most socketMaxBody bytes,
// refusing unknown fields and trailing data; the error is the 400 answer.
func decodeRequest(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, socketMaxBody))
	if err != nil {
		return fmt.Errorf("request body: %w (limit %d bytes)", err, socketMaxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	if dec.More() {
		return errors.New("decode request: trailing data after the JSON object")
	}
	return nil
}

// policyRequest checks a socket throttle by the rules `throttle` applies to
// its flags (interface, rate, ports, sources, ttl, and the Spec the shaper
// would install) and returns the policy request; the error names the field.
func (a *Agent) policyRequest(req ThrottleRequest) (policy.Request, error) {
	if err := netif.ValidName(req.Interface); err != nil {
		return policy.Request{}, fmt.Errorf("interface %w", err)
	}
	if _, err := net.InterfaceByName(req.Interface); err != nil {
		return policy.Request{}, fmt.Errorf("interface %q: no such interface", req.Interface)
	}
	ttl, err := policy.TTLFromSeconds(req.TTLSeconds)
	if err != nil {
		return policy.Request{}, err
	}
	r := policy.Request{
		ID: string(policy.ReasonManual), Reason: policy.ReasonManual, Interface: req.Interface, Scope: req.Scope,
		Sources: req.Sources, Protocols: req.Protocols, Ports: req.Ports, TTL: ttl, RateBps: req.RateBps,
	}
	if err := r.Validate(); err != nil {
		return policy.Request{}, err
	}
	if err := a.spec(a.engine.Preview(r)).Validate(); err != nil {
		return policy.Request{}, err
	}
	return r, nil
}

func (a *Agent) serveThrottle(w http.ResponseWriter, r *http.Request) {
	var req ThrottleRequest
	if err := decodeRequest(w, r, &req); err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.mu.Lock()
	pr, err := a.policyRequest(req)
	a.mu.Unlock()
	if err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A client that hangs up does not stop an action halfway: the policy and
	// the kernel must end up agreeing either way.
	d, err := a.Request(context.WithoutCancel(r.Context()), pr)
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
	if err := decodeRequest(w, r, &req); err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.All == (req.Interface != "") {
		httpjson.WriteError(w, http.StatusBadRequest, "give either interface or all")
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if req.All {
		if err := a.ReleaseAll(ctx); err != nil {
			httpjson.WriteError(w, http.StatusInternalServerError, err.Error())
			return
		}
		httpjson.Write(w, http.StatusOK, struct{}{})
		return
	}
	if err := netif.ValidName(req.Interface); err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, "interface "+err.Error())
		return
	}
	ds, err := a.Release(ctx, "", req.Interface)
	if err != nil {
		httpjson.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(ds) == 0 {
		// No owner in the policy: clean a layout without a record, if any.
		a.mu.Lock()
		err := a.ctl.Unthrottle(ctx, req.Interface)
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
