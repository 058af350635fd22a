package main

import (
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/egressguard/egressguard/doctor"
	"github.com/egressguard/egressguard/shaper"
)

func newDoctorCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor [--json]",
		Short: "Check kernel features, capabilities, watched interfaces and SYN sysctls",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			r := doctor.Run(cmd.Context(), doctor.Options{Interfaces: cfg.Interfaces, Probe: shaper.Probe, WebhookTokenFile: cfg.Webhook.TokenFile})
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else if err := r.WriteText(g.stdout); err != nil {
				return err
			}
			if r.Failed() {
				return errors.New("doctor: a check failed")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
