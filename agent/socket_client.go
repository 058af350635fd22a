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
	"syscall"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/internal/httpjson"
)

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
