package main

import (
	"github.com/spf13/cobra"

	"github.com/egressguard/egressguard/rules"
)

func newRulesCommand(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "rules [--out DIR]",
		Short: "Print the Prometheus rules, or write the rule files into DIR",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if out != "" {
				return rules.Write(out)
			}
			return rules.Print(g.stdout)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the rule files into")
	return cmd
}
