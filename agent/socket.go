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
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/internal/httpjson"
)

// ThrottleRequest is the CLI's throttle sent over the unix socket.
type ThrottleRequest struct {
	Interface  string         `json:"interface"`
	RateBps    uint64         `json:"rate_bps"`
	Ports      []uint16       `json:"ports,omitempty"`
	Sources    []netip.Prefix `json:"sources,omitempty"`
	TTLSeconds float64        `json:"ttl_seconds"`
	Force      bool           `json:"force"`
}

// UnthrottleRequest is the CLI's unthrottle sent over the unix socket.
type UnthrottleRequest struct {
	Interface string `json:"interface,omitempty"`
	All       bool   `json:"all,omitempty"`
}

// ThrottleAnswer is the agent's answer to a ThrottleRequest.
type ThrottleAnswer struct {
	Action     string            `json:"action"`
	Refused    string            `json:"refused,omitempty"`
	Detail     string            `json:"detail,omitempty"`
	Mitigation policy.Mitigation `json:"mitigation"`
}

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
		Sources: req.Sources, Ports: req.Ports, TTL: time.Duration(req.TTLSeconds * float64(time.Second)),
	}, RequestOptions{RateBps: req.RateBps, Force: req.Force})
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

// Client talks to a running agent over its unix socket.
type Client struct {
	http *http.Client
}

// Dial returns a client when an agent answers on the socket at path, and
// (nil, nil) when none runs there, so that the CLI acts directly.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent socket %s: %w", path, err)
	}
	c.Close()
	return &Client{http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}, nil
}

// Status is `status` through the agent.
func (c *Client) Status(ctx context.Context) (control.Status, error) {
	var st control.Status
	return st, c.call(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// Throttle is `throttle` through the agent; a policy refusal wraps
// policy.ErrRefused.
func (c *Client) Throttle(ctx context.Context, r ThrottleRequest) (ThrottleAnswer, error) {
	var ans ThrottleAnswer
	err := c.call(ctx, http.MethodPost, "/v1/throttle", r, &ans)
	if err == nil && ans.Action == string(policy.ActionRefuse) {
		err = fmt.Errorf("%s (%s): %w", ans.Detail, ans.Refused, policy.ErrRefused)
	}
	return ans, err
}

// Unthrottle is `unthrottle` through the agent.
func (c *Client) Unthrottle(ctx context.Context, r UnthrottleRequest) error {
	return c.call(ctx, http.MethodPost, "/v1/unthrottle", r, nil)
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("agent: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusConflict {
		var e httpjson.ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("agent: %s: %w", e.Error, control.ErrNotThrottled)
		}
		return fmt.Errorf("agent: %s", e.Error)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
