package config

import (
	"errors"
	"time"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/shaper"
)

// The config composes the settings of the packages that enforce them: each
// package validates its own (detect.Config, policy.Config, shaper.Spec), and
// Validate runs those same checks on what the file asks, so that `doctor`,
// `plan`, `throttle` and `run` accept or refuse a file alike.

// DetectorConfig is the detector's configuration: the detect.* keys over
// the detector's own defaults.
func (c Config) DetectorConfig() detect.Config {
	d := c.Detect
	dc := detect.DefaultConfig()
	dc.SynRateMin = d.SynRateMin
	dc.SynAckRatioMax = d.SynackRatioMax
	dc.RstRatioMax = d.RstRatioMax
	dc.CloseRatioMax = d.CloseRatioMax
	dc.UDPRateMin = d.UDPRateMin
	dc.UDPReplyRatioMax = d.UDPReplyRatioMax
	dc.EnterAfter = int(d.EnterAfter)
	dc.ExitAfter = int(d.ExitAfter)
	dc.Tick = time.Duration(d.Tick)
	dc.Window = time.Duration(d.Window)
	dc.RTTAllowance = time.Duration(d.RTTAllowance)
	dc.KeyEnterTicks = int(d.KeyEnterTicks)
	dc.KeyExitTicks = int(d.KeyExitTicks)
	dc.ICMPRateMin = d.ICMPRateMin
	dc.ICMPReplyRatioMax = d.ICMPReplyRatioMax
	dc.ICMPRateMax = d.ICMPRateMax
	dc.SpoofRateMin = d.SpoofRateMin
	dc.MaxSourcesTracked = int(d.MaxSourcesTracked)
	dc.MaxPortsTracked = int(d.MaxPortsTracked)
	return dc
}

// Owned is detect.owned: the prefixes each VM bridge port owns beyond what
// the node's tables show; nil when none are configured.
func (c Config) Owned() detect.Owned {
	if len(c.Detect.Owned) == 0 {
		return nil
	}
	o := make(detect.Owned, len(c.Detect.Owned))
	for port, ps := range c.Detect.Owned {
		o[port] = Prefixes(ps)
	}
	return o
}

// PolicyConfig is the policy engine's configuration; paused reports whether
// the pause file exists.
func (c Config) PolicyConfig(paused func() bool) policy.Config {
	return policy.Config{
		Mode:              policy.Mode(c.Mode),
		TTL:               time.Duration(c.Throttle.TTL),
		MaxTTL:            time.Duration(c.Throttle.MaxTTL),
		MaxActionsPerHour: int(c.Throttle.MaxActionsPerHour),
		Scope:             c.Throttle.Scope,
		MaxSources:        int(c.Throttle.MaxSources),
		// The detector already holds a verdict for exit_after clean
		// intervals; counting them again here would double the release delay.
		ExitAfter:      1,
		Ports:          Ports(c.Throttle.Ports),
		Protocols:      c.Throttle.Protocols,
		WhitelistPorts: Ports(c.Whitelist.Ports),
		WhitelistCIDRs: Prefixes(c.Whitelist.CIDRs),
		Paused:         paused,
	}
}

// Spec is the shaper Spec a throttle on iface installs under this config
// (scope node), before a request narrows its sources or scope or changes
// its ports or rate.
func (c Config) Spec(iface string) shaper.Spec {
	return shaper.Spec{
		Interface:      iface,
		Scope:          shaper.ScopeNode,
		Rate:           uint64(c.Throttle.Rate),
		Ports:          shaper.Ports(Ports(c.Throttle.Ports)...),
		Protocols:      c.Throttle.Protocols,
		WhitelistPorts: Ports(c.Whitelist.Ports),
		WhitelistCIDRs: Prefixes(c.Whitelist.CIDRs),
	}
}

// specKeys names the config key of each shaper.Spec field it fills.
var specKeys = map[string]string{
	"rate":            "throttle.rate",
	"ports":           "throttle.ports",
	"protocols":       "throttle.protocols",
	"whitelist_ports": "whitelist.ports",
	"whitelist_cidrs": "whitelist.cidrs",
}

// validateComposed runs the detector's, the policy's and the shaper's own
// checks on this config, naming the config key at fault.
func (c Config) validateComposed() error {
	if err := c.DetectorConfig().Validate(); err != nil {
		return err
	}
	if err := c.Owned().Validate(); err != nil {
		return err
	}
	// Any valid name serves: the interface is the request's, not the config's.
	if err := c.Spec("eth0").Validate(); err != nil {
		var fe *shaper.FieldError
		if errors.As(err, &fe) {
			if key, ok := specKeys[fe.Field]; ok {
				return errors.New(fe.Path(key) + " " + fe.Value + ": " + fe.Reason)
			}
		}
		return err
	}
	return c.PolicyConfig(nil).Validate()
}
