package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/egressguard/egressguard/shaper"
)

// Mode says whether the policy may change kernel state.
type Mode string

// Modes of the agent.
const (
	// ModeObserve detects, alerts and logs but never throttles.
	ModeObserve Mode = "observe"
	// ModeEnforce throttles.
	ModeEnforce Mode = "enforce"
)

// ScopeAuto is a throttle.scope choice, never the scope of a mitigation: the
// policy resolves it to shaper.ScopePort on each VM bridge port the
// detector's signature names, one mitigation per port (a spoofing VM is
// throttled by its port alone; see Engine.Step); with no port named, to
// shaper.ScopeSource when it names at most Config.MaxSources sources, else
// to shaper.ScopeNode.
const ScopeAuto shaper.Scope = "auto"

// Config holds the limits the policy enforces. Field comments name the
// config.yaml key that fills them.
type Config struct {
	Mode              Mode          // mode
	TTL               time.Duration // throttle.ttl: default lifetime of a claim, renewed while a flood lasts
	MaxTTL            time.Duration // throttle.max_ttl: hard cap on a mitigation's age
	MaxActionsPerHour int           // throttle.max_actions_per_hour: throttles+updates in any sliding hour
	Scope             shaper.Scope  // throttle.scope: scope of the detector's mitigations
	MaxSources        int           // throttle.max_sources: most sources ScopeAuto throttles by source
	ExitAfter         int           // detect.exit_after: clean intervals before the detector releases
	Ports             []uint16      // throttle.ports: default throttled destination ports
	// Protocols (throttle.protocols) a throttle without a signature covers:
	// "tcp", "udp", "icmp"; empty = any IP protocol. Checked by shaper.Spec.Validate.
	Protocols      []string
	WhitelistPorts []uint16 // whitelist.ports: never throttled; shaper.SSHPort is implied
	WhitelistCIDRs []netip.Prefix
	// Paused reports whether the pause file exists; nil means never paused.
	// It is called only when a new action is about to be taken.
	Paused func() bool
}

// Validate reports the first nonsensical field, naming its config key and value.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeObserve, ModeEnforce:
	default:
		return fmt.Errorf("policy: mode %q: want observe or enforce", c.Mode)
	}
	if c.TTL <= 0 {
		return fmt.Errorf("policy: throttle.ttl %s: want a positive duration", c.TTL)
	}
	if c.MaxTTL < c.TTL {
		return fmt.Errorf("policy: throttle.max_ttl %s: want at least throttle.ttl (%s)", c.MaxTTL, c.TTL)
	}
	if c.MaxActionsPerHour < 1 {
		return fmt.Errorf("policy: throttle.max_actions_per_hour %d: want at least 1 (mode observe takes no actions)", c.MaxActionsPerHour)
	}
	switch c.Scope {
	case ScopeAuto, shaper.ScopeSource, shaper.ScopeNode:
	default:
		return fmt.Errorf("policy: throttle.scope %q: want auto, source or node", c.Scope)
	}
	if c.MaxSources < 1 && c.Scope != shaper.ScopeNode {
		return fmt.Errorf("policy: throttle.max_sources %d: want at least 1", c.MaxSources)
	}
	if c.ExitAfter < 1 {
		return fmt.Errorf("policy: detect.exit_after %d: want at least 1", c.ExitAfter)
	}
	if len(c.Ports) == 0 {
		return fmt.Errorf("policy: throttle.ports []: want at least one port")
	}
	for _, p := range c.WhitelistPorts {
		if p == 0 {
			return fmt.Errorf("policy: whitelist.ports 0: want a port from 1 to 65535")
		}
	}
	for _, p := range c.Ports {
		if p == 0 {
			return fmt.Errorf("policy: throttle.ports 0: want a port from 1 to 65535")
		}
		if c.portWhitelisted(p) {
			return fmt.Errorf("policy: throttle.ports %d: the port is whitelisted (SSH 22 and whitelist.ports are never throttled)", p)
		}
	}
	for _, p := range c.WhitelistCIDRs {
		if !p.IsValid() {
			return fmt.Errorf("policy: whitelist.cidrs %q: want a CIDR like 10.0.0.0/8", p)
		}
	}
	return nil
}

func (c Config) portWhitelisted(p uint16) bool {
	return p == shaper.SSHPort || slices.Contains(c.WhitelistPorts, p)
}

// cidrWhitelisted returns the whitelisted CIDR p overlaps, if any.
func (c Config) cidrWhitelisted(p netip.Prefix) (netip.Prefix, bool) {
	for _, w := range c.WhitelistCIDRs {
		if w.Overlaps(p) {
			return w, true
		}
	}
	return netip.Prefix{}, false
}

func (c Config) paused() bool {
	return c.Paused != nil && c.Paused()
}
