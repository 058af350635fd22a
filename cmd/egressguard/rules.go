package main

import (
	"github.com/spf13/cobra"

	"github.com/egressguard/egressguard/rules"
)

func newRulesCommand(g *globals) *cobra.Command {
	var out string
	var dashboard bool
	cmd := &cobra.Command{
		Use:   "rules [--out DIR] [--dashboard]",
		Short: "Print the Prometheus rules (or write the rule files into DIR), or the Grafana dashboard",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if dashboard {
				if out != "" {
					return badInput("--dashboard: prints to stdout; drop --out %q", out)
				}
				_, err := g.stdout.Write(rules.Dashboard())
				return err
			}
			if out != "" {
				return rules.Write(out)
			}
			return rules.Print(g.stdout)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the rule files into")
	cmd.Flags().BoolVar(&dashboard, "dashboard", false, "print the Grafana dashboard (JSON) instead")
	return cmd
}
