package labagent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/internal/lab"
)

// Listen is where the lab's agent serves HTTP inside the node namespace.
const Listen = "127.0.0.1:9466"

// Config is the lab's agent configuration with everything under dir:
// enforce mode on up0, 1 s intervals, exit_after 10, a 1mbit throttle, the
// state directory, socket and webhook token file in dir, and a budget large
// enough for tests that restart the agent many times.
func Config(dir string) config.Config {
	c := config.Default()
	c.Mode = config.ModeEnforce
	c.NodeName = "lab-node"
	c.Interfaces = []string{lab.Uplink}
	c.Listen = Listen
	c.Socket = filepath.Join(dir, "egressguard.sock")
	c.StateDir = filepath.Join(dir, "state")
	c.Detect.Interval = config.Duration(time.Second)
	c.Detect.ExitAfter = 10
	c.Throttle.Rate = 1_000_000
	c.Throttle.MaxActionsPerHour = 1000
	c.Webhook.TokenFile = filepath.Join(dir, "webhook.token")
	return c
}

// WriteConfig writes c as YAML to path (0600).
func WriteConfig(path string, c config.Config) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("labagent: marshal config: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("labagent: write config: %w", err)
	}
	return nil
}

// Agent is `egressguard run` inside the node namespace.
type Agent struct {
	Lab        *lab.Lab
	Bin        string // the egressguard binary
	ConfigPath string
	// TokenFile is the webhook's bearer token file; Status sends the token
	// so that it sees the attribution.
	TokenFile string
	Proc      *lab.Proc
	HTTP      *http.Client // dials inside the node namespace
	// Capabilities, when set, are the agent's only capabilities (setpriv
	// bounds them as the packaged unit does, see UnitCapabilities); nil runs
	// it with the test's own.
	Capabilities []string
	// SyscallFilter, when set, is a command prefix that applies the unit's
	// system call filter before the agent starts (UnitConfinement).
	SyscallFilter []string
}

// New writes cfg to dir/config.yaml, and a webhook token to
// cfg.Webhook.TokenFile unless one is there, and returns an agent of binary
// bin in l's node namespace that is not yet running; Start runs it.
func New(l *lab.Lab, bin, dir string, cfg config.Config) (*Agent, error) {
	a := &Agent{Lab: l, Bin: bin, ConfigPath: filepath.Join(dir, "config.yaml"), TokenFile: cfg.Webhook.TokenFile, HTTP: lab.HTTPClient(l.Node)}
	if _, err := os.Stat(a.TokenFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(a.TokenFile, []byte("lab-token-"+filepath.Base(dir)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("labagent: write webhook token: %w", err)
		}
	}
	return a, WriteConfig(a.ConfigPath, cfg)
}

// Start is New then Agent.Start.
func Start(ctx context.Context, l *lab.Lab, bin, dir string, cfg config.Config) (*Agent, error) {
	a, err := New(l, bin, dir, cfg)
	if err != nil {
		return nil, err
	}
	return a, a.Start(ctx)
}

// Start runs the agent and waits until /readyz answers (reconcile done).
func (a *Agent) Start(ctx context.Context) error {
	if err := a.StartNoWait(); err != nil {
		return err
	}
	return a.WaitReady(ctx)
}

// StartNoWait runs the agent without waiting for it to be ready.
func (a *Agent) StartNoWait() error {
	args := []string{a.Bin, "--config", a.ConfigPath, "run"}
	args = append(slices.Clone(a.SyscallFilter), args...)
	if a.Capabilities != nil {
		args = append(setprivArgs(a.Capabilities), args...)
	}
	p, err := a.Lab.Start(a.Lab.Node, args[0], args[1:]...)
	if err != nil {
		return err
	}
	a.Proc = p
	return nil
}

// WaitReady polls /readyz until it answers 200, the agent exits or ctx ends.
func (a *Agent) WaitReady(ctx context.Context) error {
	for {
		if resp, err := a.get(ctx, "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-a.Proc.Done():
			return fmt.Errorf("labagent: agent exited before ready: %s", a.Proc.Output())
		case <-ctx.Done():
			return fmt.Errorf("labagent: agent not ready: %w\n%s", ctx.Err(), a.Proc.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the agent with SIGTERM (mitigations stay in force).
func (a *Agent) Stop() error { return a.Proc.Stop(10 * time.Second) }

// Reload sends SIGHUP: the agent rereads its config file.
func (a *Agent) Reload() error { return a.Proc.Signal(syscall.SIGHUP) }

func (a *Agent) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+Listen+path, nil)
	if err != nil {
		return nil, err
	}
	if tok, err := os.ReadFile(a.TokenFile); err == nil {
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	return a.HTTP.Do(req)
}

// Status reads /api/v1/status with the webhook's token, attribution included.
func (a *Agent) Status(ctx context.Context) (control.Status, error) {
	var st control.Status
	resp, err := a.get(ctx, "/api/v1/status")
	if err != nil {
		return st, fmt.Errorf("labagent: agent status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return st, fmt.Errorf("labagent: agent status: %s: %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("labagent: agent status: %w", err)
	}
	return st, nil
}

// Metrics reads /metrics in the Prometheus text format.
func (a *Agent) Metrics(ctx context.Context) (string, error) {
	resp, err := a.get(ctx, "/metrics")
	if err != nil {
		return "", fmt.Errorf("labagent: agent metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("labagent: agent metrics: %w", err)
	}
	return string(b), nil
}

// CLI runs `egressguard --config FILE args...` inside the node namespace
// and returns its combined output and exit code (-1 if it did not run).
func (a *Agent) CLI(ctx context.Context, args ...string) (string, int, error) {
	return a.cli(ctx, false, args...)
}

// CLIConfined is CLI under the agent's confinement (Capabilities and
// SyscallFilter) instead of the test's own privileges.
func (a *Agent) CLIConfined(ctx context.Context, args ...string) (string, int, error) {
	return a.cli(ctx, true, args...)
}

func (a *Agent) cli(ctx context.Context, confined bool, args ...string) (string, int, error) {
	argv := []string{"netns", "exec", a.Lab.Node}
	if confined {
		if a.Capabilities != nil {
			argv = append(argv, setprivArgs(a.Capabilities)...)
		}
		argv = append(argv, a.SyscallFilter...)
	}
	argv = append(argv, a.Bin, "--config", a.ConfigPath)
	cmd := exec.CommandContext(ctx, "ip", append(argv, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode(), nil
	}
	if err != nil {
		return string(out), -1, fmt.Errorf("labagent: egressguard %s: %w", strings.Join(args, " "), err)
	}
	return string(out), 0, nil
}

// LogEntries returns the agent's JSON log lines whose "msg" is msg ("" =
// all), across every run of this Agent's current process.
func (a *Agent) LogEntries(msg string) []map[string]any {
	return ParseLog(a.Proc.Output(), msg)
}

// ParseLog decodes slog JSON lines, keeping those whose "msg" is msg ("" =
// all); lines that are not JSON are skipped.
func ParseLog(out, msg string) []map[string]any {
	var res []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if msg == "" || m["msg"] == msg {
			res = append(res, m)
		}
	}
	return res
}

// StartCLI runs `egressguard --config FILE args...` for a's config in the
// background inside the node namespace (e.g. to kill the agent while the
// command is being served).
func (a *Agent) StartCLI(args ...string) (*lab.Proc, error) {
	return a.Lab.Start(a.Lab.Node, a.Bin, append([]string{"--config", a.ConfigPath}, args...)...)
}
