package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/egressguard/egressguard/agent"
	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/internal/netif"
	"github.com/egressguard/egressguard/shaper"
)

// throttleFlags are the flags `throttle` and `plan` share; empty values
// fall back to the config.
type throttleFlags struct {
	iface     string
	port      string
	rate      string
	ports     string
	protocols string
	sources   []string
	ttl       string
}

func (f *throttleFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.iface, "interface", "", "uplink to throttle on (scopes node and source)")
	fs.StringVar(&f.port, "port", "", "VM bridge port (tap, vnet, veth) to throttle what the VM sends, whatever its source addresses (scope port)")
	fs.StringVar(&f.rate, "rate", "", "rate of the throttled class, e.g. 1mbit (default throttle.rate)")
	fs.StringVar(&f.ports, "ports", "", "destination ports of tcp and udp to throttle, e.g. 80,443,8000-8080 or any (default throttle.ports)")
	fs.StringVar(&f.protocols, "protocols", "", "protocols to throttle: tcp, udp, icmp, comma-separated, or any (default throttle.protocols)")
	fs.StringArrayVar(&f.sources, "source", nil, "throttle only these source CIDRs (repeatable; scope source); without it the whole node (scope node)")
	fs.StringVar(&f.ttl, "ttl", "", "how long the throttle lasts, e.g. 30m (default throttle.ttl)")
}

// spec builds and validates the Spec the flags and config ask for.
func (f *throttleFlags) spec(cfg config.Config) (shaper.Spec, error) {
	s := cfg.Spec(f.iface)
	switch {
	case f.iface == "" && f.port == "":
		return shaper.Spec{}, badInput("--interface or --port: one is required")
	case f.port != "" && len(f.sources) > 0:
		return shaper.Spec{}, badInput("--port %q: scope port throttles whatever the VM sends; drop --source", f.port)
	case f.port != "":
		if err := netif.ValidName(f.port); err != nil {
			return shaper.Spec{}, badInput("--port %w", err)
		}
		// The classifier sits on the VM port; the uplink plays no part.
		s.Interface, s.Scope = f.port, shaper.ScopePort
	default:
		if err := netif.ValidName(f.iface); err != nil {
			return shaper.Spec{}, badInput("--interface %w", err)
		}
	}
	if f.protocols != "" {
		s.Protocols = nil
		if f.protocols != "any" {
			s.Protocols = strings.Split(f.protocols, ",")
		}
	}
	if f.rate != "" {
		r, err := config.ParseRate(f.rate)
		if err != nil {
			return shaper.Spec{}, badInput("--rate %w", err)
		}
		s.Rate = r
	}
	if f.ports != "" {
		ps, err := shaper.ParsePortRanges(f.ports)
		if err != nil {
			return shaper.Spec{}, badInput("--ports %w", err)
		}
		s.Ports = ps
	}
	for _, src := range f.sources {
		p, err := config.ParsePrefix(src)
		if err != nil {
			return shaper.Spec{}, badInput("--source %w", err)
		}
		s.Sources, s.Scope = append(s.Sources, p), shaper.ScopeSource
	}
	resolvers, err := shaper.ReadResolvers(shaper.ResolvConf)
	if err != nil {
		return shaper.Spec{}, err
	}
	s.Resolvers = resolvers
	if err := s.Validate(); err != nil {
		return shaper.Spec{}, inputError{err}
	}
	return s, nil
}

// ttl is --ttl or the config's, never above throttle.max_ttl.
func (f *throttleFlags) duration(cfg config.Config) (time.Duration, error) {
	ttl := time.Duration(cfg.Throttle.TTL)
	if f.ttl != "" {
		d, err := config.ParseDuration(f.ttl)
		if err == nil {
			err = policy.ValidTTL(d)
		}
		if err != nil {
			return 0, badInput("--ttl %w", err)
		}
		ttl = d
	}
	if max := time.Duration(cfg.Throttle.MaxTTL); ttl > max {
		return 0, badInput("--ttl %q: above throttle.max_ttl %s", f.ttl, max)
	}
	return ttl, nil
}

// resolve loads the config and turns the flags into a validated Spec and TTL.
func (f *throttleFlags) resolve(g *globals) (config.Config, shaper.Spec, time.Duration, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return config.Config{}, shaper.Spec{}, 0, err
	}
	spec, err := f.spec(cfg)
	if err != nil {
		return config.Config{}, shaper.Spec{}, 0, err
	}
	ttl, err := f.duration(cfg)
	if err != nil {
		return config.Config{}, shaper.Spec{}, 0, err
	}
	return cfg, spec, ttl, nil
}

func newThrottleCommand(g *globals) *cobra.Command {
	var f throttleFlags
	cmd := &cobra.Command{
		Use:   "throttle (--interface UPLINK [--source CIDR]... | --port VMPORT) [--rate 1mbit] [--protocols tcp,udp] [--ports 80,443] [--ttl 30m]",
		Short: "Throttle egress to the given protocols and ports, now: of the node, of sources, or of one VM port",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, spec, ttl, err := f.resolve(g)
			if err != nil {
				return err
			}
			// The agent refuses the same targets; checking here first keeps
			// the answer (exit 2) the same with or without a running agent.
			if spec.Scope == shaper.ScopePort {
				// A VM port is never watched itself (its bridge's uplink is);
				// it only has to carry traffic that leaves the node.
				why, err := netif.LocalOnly(spec.Interface)
				if err != nil {
					return badInput("--port %w", err)
				}
				if why != "" {
					return badInput("--port %q: %s", spec.Interface, why)
				}
			} else {
				watched, err := netif.Watched(cfg.Interfaces)
				if err != nil {
					return err
				}
				if err := netif.CheckTarget(spec.Interface, netif.Names(watched)); err != nil {
					return badInput("--interface %w", err)
				}
			}
			if cl, err := agent.Dial(cfg.Socket); err != nil {
				return err
			} else if cl != nil {
				return throttleViaAgent(cmd.Context(), g, cl, spec, ttl)
			}
			ctl, closeFn, err := g.controller(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer closeFn()
			m, err := ctl.Install(cmd.Context(), control.Request{Spec: spec, Reason: policy.ReasonManual, Expires: time.Now().Add(ttl)})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "throttled %s: %s to ports %s at %s, scope %s%s, until %s\n",
				m.Interface, joinProtocols(m.Protocols), joinPorts(m.Ports), shaper.FormatRate(m.RateBps),
				m.Scope, sourcesSuffix(m.Sources), m.Expires.Format(time.RFC3339))
			for _, w := range m.Warnings {
				fmt.Fprintln(g.stdout, "warning:", w)
			}
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newUnthrottleCommand(g *globals) *cobra.Command {
	var iface, port string
	var all bool
	cmd := &cobra.Command{
		Use:   "unthrottle --interface IF | --port VMPORT | --all",
		Short: "Remove egressguard's throttle (classifier and shaping device) from an interface or a VM port",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			given := 0
			for _, set := range []bool{iface != "", port != "", all} {
				if set {
					given++
				}
			}
			if given != 1 {
				return badInput("give one of --interface IF, --port VMPORT or --all")
			}
			flag := "--interface"
			if port != "" {
				// A port-scoped throttle lives on the VM port itself.
				flag, iface = "--port", port
			}
			if iface != "" {
				if err := netif.ValidName(iface); err != nil {
					return badInput("%s %w", flag, err)
				}
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if cl, err := agent.Dial(cfg.Socket); err != nil {
				return err
			} else if cl != nil {
				if err := cl.Unthrottle(cmd.Context(), agent.UnthrottleRequest{Interface: iface, All: all}); err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, "released through the agent")
				return nil
			}
			ctl, closeFn, err := g.controller(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer closeFn()
			if all {
				if err := ctl.UnthrottleAll(cmd.Context()); err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, "removed every egressguard throttle")
				return nil
			}
			if err := ctl.Unthrottle(cmd.Context(), iface); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "unthrottled %s\n", iface)
			return nil
		},
	}
	cmd.Flags().StringVar(&iface, "interface", "", "interface to release")
	cmd.Flags().StringVar(&port, "port", "", "VM bridge port whose throttle (throttle --port) to release")
	cmd.Flags().BoolVar(&all, "all", false, "release every interface egressguard throttles")
	return cmd
}

func newPlanCommand(g *globals) *cobra.Command {
	var f throttleFlags
	cmd := &cobra.Command{
		Use:   "plan (--interface UPLINK | --port VMPORT) [same flags as throttle]",
		Short: "Print the ip and tc commands a throttle would run; change nothing",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, spec, _, err := f.resolve(g)
			if err != nil {
				return err
			}
			// Refused as throttle refuses it when the interface is this
			// node's and carries nothing that leaves it (a loopback, a
			// dummy); one this node does not have may be another node's.
			flag := "--interface"
			if spec.Scope == shaper.ScopePort {
				flag = "--port"
			}
			switch why, err := netif.LocalOnly(spec.Interface); {
			case err != nil:
				fmt.Fprintf(g.stdout, "# %s is not an interface of this node: planned as given\n", spec.Interface)
			case why != "":
				return badInput("%s %q: %s", flag, spec.Interface, why)
			}
			feats, err := shaper.Probe(cmd.Context())
			if err != nil {
				feats = shaper.Features{SFQ: true}
				fmt.Fprintf(g.stdout, "# kernel features not probed (%v): assuming sch_sfq\n", err)
			}
			p, err := shaper.NewPlan(spec, feats)
			if err != nil {
				return inputError{err}
			}
			for _, w := range p.Warnings {
				fmt.Fprintln(g.stdout, "# warning:", w)
			}
			fmt.Fprint(g.stdout, p.Render())
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// throttleViaAgent hands the throttle to the running agent, which adopts it
// into its policy (reason manual) and TTL. The request carries the Spec's
// scope, protocols and ports as resolved here, so the agent throttles what
// the same flags throttle without it; the agent validates them with the
// shaper's rules again.
func throttleViaAgent(ctx context.Context, g *globals, cl *agent.Client, spec shaper.Spec, ttl time.Duration) error {
	req := agent.ThrottleRequest{
		Interface: spec.Interface, RateBps: spec.Rate, Protocols: &spec.Protocols, Ports: &spec.Ports, Sources: spec.Sources,
		TTLSeconds: ttl.Seconds(),
	}
	if spec.Scope == shaper.ScopePort {
		req.Scope = shaper.ScopePort
	}
	ans, err := cl.Throttle(ctx, req)
	if err != nil {
		return err
	}
	m := ans.Mitigation
	fmt.Fprintf(g.stdout, "throttled %s through the agent (%s): %s to ports %s at %s, scope %s%s, until %s\n",
		m.Interface, ans.Action, joinProtocols(m.Protocols), joinPorts(m.Ports), shaper.FormatRate(spec.Rate), m.Scope,
		sourcesSuffix(m.Sources), m.Expires.Format(time.RFC3339))
	return nil
}

// joinProtocols is "tcp+udp", or "any" for none (any IP protocol).
func joinProtocols(ps []string) string {
	if len(ps) == 0 {
		return "any"
	}
	return strings.Join(ps, "+")
}

// controller opens the kernel adapter and the state store for a command
// that acts directly (no agent running).
func (g *globals) controller(ctx context.Context, cfg config.Config) (*control.Controller, func(), error) {
	store, err := state.Open(cfg.StateDir)
	if err != nil {
		return nil, nil, err
	}
	feats, err := shaper.Probe(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("probe kernel features: %w", err)
	}
	sh, err := shaper.Open(shaper.Options{Logger: g.logger()})
	if err != nil {
		return nil, nil, err
	}
	ctl := &control.Controller{Store: store, Kernel: sh, Features: feats, Now: time.Now, Log: g.logger(),
		RecoverTTL: time.Duration(cfg.Throttle.TTL)}
	return ctl, func() { sh.Close() }, nil
}

func joinPorts[T any](ps []T) string {
	if len(ps) == 0 {
		return "any"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}

func sourcesSuffix(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return ""
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return " (" + strings.Join(s, ", ") + ")"
}
