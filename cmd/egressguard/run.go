package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/egressguard/egressguard/agent"
	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/config"
)

// nodeNameEnv names the node when the config does not (the DaemonSet sets
// it from spec.nodeName).
const nodeNameEnv = "EGRESSGUARD_NODE_NAME"

func newRunCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "run [--config FILE]",
		Short: "Run the agent: detect, mitigate within policy, serve metrics, status and the webhook",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			for i, name := range cfg.Interfaces {
				if _, err := net.InterfaceByName(name); err != nil {
					return badInput("interfaces[%d] %q: no such interface on this node", i, name)
				}
			}
			log := slog.New(slog.NewJSONHandler(g.stderr, nil))
			return runAgent(cmd.Context(), g, cfg, log)
		},
	}
}

func nodeName(cfg config.Config) string {
	if cfg.NodeName != "" {
		return cfg.NodeName
	}
	if n := os.Getenv(nodeNameEnv); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}

func runAgent(ctx context.Context, g *globals, cfg config.Config, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The state directory is this agent's for its lifetime; a second agent
	// stops here, before it touches the kernel or the state file.
	store, err := state.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	release, err := store.HoldForAgent()
	if err != nil {
		return err
	}
	defer release()
	// Bind before touching the kernel: a port in use stops the start cleanly.
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	defer l.Close()
	a, closeFn, err := agent.Open(ctx, agent.Options{Config: cfg, Version: version, Node: nodeName(cfg), Log: log})
	if err != nil {
		return err
	}
	defer closeFn()
	if err := a.Reconcile(ctx); err != nil {
		log.Error("reconcile", "err", err)
	}
	errc := make(chan error, 3)
	go func() {
		if err := a.ServeListen(ctx, l); err != nil {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	go func() {
		if err := a.ServeSocket(ctx, cfg.Socket); err != nil {
			errc <- err
		}
	}()
	go func() { errc <- a.Run(ctx) }()
	log.Info("agent started", "version", version, "listen", cfg.Listen, "socket", cfg.Socket, "mode", cfg.Mode)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			next, err := config.Load(g.configPath)
			if err == nil {
				err = a.Reload(next)
			}
			if err != nil {
				log.Error("config reload refused; keeping the old config", "err", err)
			}
		case err := <-errc:
			cancel()
			return err
		case <-ctx.Done():
			log.Info("agent stopped; mitigations stay in force until they expire")
			return nil
		}
	}
}
