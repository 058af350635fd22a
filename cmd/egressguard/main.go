// Command egressguard detects outbound flood sources on a node and throttles
// them with tc. See `egressguard --help` and docs/design.md §7 for the contract.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/egressguard/egressguard/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes of every command (docs/design.md §7).
const (
	exitOK      = 0
	exitFailure = 1
	exitInput   = 2
)

// inputError marks bad input: the command exits 2 and changed nothing.
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

func badInput(format string, args ...any) error {
	return inputError{fmt.Errorf(format, args...)}
}

// globals are the flags every command takes.
type globals struct {
	configPath string
	stdout     io.Writer
	stderr     io.Writer
}

// loadConfig reads --config; a bad file is bad input.
func (g *globals) loadConfig() (config.Config, error) {
	c, err := config.Load(g.configPath)
	if err != nil {
		return config.Config{}, inputError{err}
	}
	return c, nil
}

// logger is the CLI's human-readable log on stderr.
func (g *globals) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "egressguard",
		Short:         "Detect and throttle outbound flood sources on this node",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.PersistentFlags().StringVar(&g.configPath, "config", config.DefaultPath, "config file (a missing default file means built-in defaults)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return inputError{err} })
	root.AddCommand(
		newThrottleCommand(g),
		newUnthrottleCommand(g),
		newPlanCommand(g),
		newStatusCommand(g),
		newVersionCommand(g),
		newRunCommand(g),
		newRulesCommand(g),
		newDoctorCommand(g),
		newReplayCommand(g),
	)
	return root
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRootCommand(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "egressguard:", err)
	if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
		// The agent's socket and state directory are root's, and tc needs
		// CAP_NET_ADMIN: say so rather than leave a bare EACCES.
		fmt.Fprintln(stderr, "egressguard: this needs root (the agent's socket, its state and tc are root's): run it with sudo")
	}
	var in inputError
	if errors.As(err, &in) || strings.HasPrefix(err.Error(), "unknown command") {
		return exitInput
	}
	return exitFailure
}

// noArgs rejects positional arguments as bad input.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return badInput("%s: unexpected argument %q", cmd.CommandPath(), args[0])
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
