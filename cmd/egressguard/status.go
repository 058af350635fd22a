package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/egressguard/egressguard/agent"
	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/shaper"
)

func newStatusCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show the mitigations in force, from the state file and the kernel",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			st, err := readStatus(cmd.Context(), g, cfg)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(g, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (docs/design.md §7)")
	return cmd
}

// readStatus asks the running agent, or reads the state file and the
// kernel when none runs.
func readStatus(ctx context.Context, g *globals, cfg config.Config) (control.Status, error) {
	cl, err := agent.Dial(cfg.Socket)
	if err != nil {
		return control.Status{}, err
	}
	if cl != nil {
		return cl.Status(ctx)
	}
	store, err := state.Open(cfg.StateDir)
	if err != nil {
		return control.Status{}, err
	}
	sh, err := shaper.Open(shaper.Options{Logger: g.logger()})
	if err != nil {
		return control.Status{}, err
	}
	defer sh.Close()
	ctl := &control.Controller{Store: store, Kernel: sh, Now: time.Now, Log: g.logger(),
		RecoverTTL: time.Duration(cfg.Throttle.TTL)}
	return ctl.Status(ctx, cfg.Mode)
}

func printStatus(g *globals, st control.Status) {
	agent := "not running (showing the state file and the kernel)"
	if st.Agent {
		agent = "running"
	}
	fmt.Fprintf(g.stdout, "mode: %s, agent: %s\n", st.Mode, agent)
	if len(st.Mitigations) == 0 {
		fmt.Fprintln(g.stdout, "no mitigations")
	} else {
		w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "INTERFACE\tSCOPE\tSOURCES\tPROTOCOLS\tPORTS\tRATE\tREASON\tEXPIRES\tINSTALLED\tTHROTTLED\tDROPS")
		for _, m := range st.Mitigations {
			expires := m.Expires.Format(time.RFC3339)
			if m.Expired {
				expires += " (expired)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%t\t%d B\t%d\n", m.Interface, m.Scope,
				strings.TrimSpace(strings.Trim(sourcesSuffix(m.Sources), " ()")), joinProtocols(m.Protocols), joinPorts(m.Ports),
				shaper.FormatRate(m.RateBps), m.Reason, expires, m.Installed, m.Throttled.Bytes, m.Throttled.Drops)
		}
		w.Flush()
	}
	if len(st.Interfaces) > 0 {
		w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "WATCHED\tVERDICT\tTX Mbit/s\tTX pps\tSYN out/s\tSYN-ACK in/s\tREASONS")
		for _, i := range st.Interfaces {
			fmt.Fprintf(w, "%s\t%s\t%.2f\t%.0f\t%.0f\t%.0f\t%s\n", i.Name, i.Verdict, i.TxBps/1e6, i.TxPps,
				i.SynOutPps, i.SynAckInPps, strings.Join(i.Reasons, "; "))
		}
		w.Flush()
		for _, i := range st.Interfaces {
			if i.Bridge != "" {
				fmt.Fprintf(g.stdout, "note: %s is watched and throttled for bridge %s: %s\n", i.Name, i.Bridge, i.Watched)
			}
			if i.Blind != "" {
				fmt.Fprintf(g.stdout, "warning: %s is blind: %s\n", i.Name, i.Blind)
			}
		}
	}
	for _, m := range st.Mitigations {
		for _, warn := range m.Warnings {
			fmt.Fprintf(g.stdout, "warning: %s: %s\n", m.Interface, warn)
		}
		if m.InspectError != "" {
			fmt.Fprintf(g.stdout, "warning: %s: %s\n", m.Interface, m.InspectError)
		}
	}
	for _, name := range st.Unrecorded {
		fmt.Fprintf(g.stdout, "warning: %s carries an egressguard layout with no record; `egressguard unthrottle --interface %s` removes it\n", name, name)
	}
}
