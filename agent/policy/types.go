package policy

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/egressguard/egressguard/detect"

	"github.com/egressguard/egressguard/shaper"
)

// Observation is the detector's verdict on one watched interface for one
// interval, after its enter_after hysteresis.
type Observation struct {
	Interface string
	// State is the detector's; anything but flood counts as a clean interval.
	State detect.State
	// Signature is what floods (detect.KeyDetector); nil when the detector
	// names none, and the policy then throttles throttle.protocols and
	// throttle.ports.
	Signature *detect.Signature
	// Sources are the top offending source addresses, most first.
	Sources []netip.Addr
	// Unported are the flooding sources seen behind no VM bridge port (the
	// node's own); when the signature names VM ports too, they are the
	// uplink's part of the flood (Engine.split).
	Unported []netip.Addr
	// episode is the key of the episode the observation feeds when the
	// Engine splits it per VM port (Engine.split); "" is Interface's.
	episode string
}

// Reason says who asked for a mitigation.
type Reason string

// Reasons, as recorded in the state file and reported in status and metrics.
const (
	ReasonDetector Reason = "detector"
	ReasonWebhook  Reason = "webhook"
	ReasonManual   Reason = "manual"
)

// OwnerDetector is the owner ID of the detector's claims; requests may not use it.
const OwnerDetector = "detector"

// Request asks for a throttle on behalf of the webhook or an operator.
type Request struct {
	// ID identifies the owner: an Alertmanager fingerprint, "manual". A
	// repeated request with the same ID replaces that owner's claim.
	ID        string
	Reason    Reason // ReasonWebhook or ReasonManual
	Interface string
	// Scope is empty for scope node (no Sources) or source (Sources
	// named), or shaper.ScopePort: Interface is then a VM bridge port and
	// the throttle holds whatever the VM sends through it.
	Scope shaper.Scope
	// Sources to throttle; empty means the whole node.
	Sources []netip.Prefix
	// Protocols to throttle ("tcp", "udp", "icmp"); nil means
	// Config.Protocols, an empty non-nil list any IP protocol.
	Protocols *[]string
	// Ports (destination ports of tcp and udp, single or ranges) to
	// throttle; nil means Config.Ports, an empty non-nil list any port.
	Ports *[]shaper.PortRange
	// TTL of the claim; 0 means Config.TTL. Above Config.MaxTTL is refused.
	TTL time.Duration
	// RateBps is the throttled class's rate this owner asks for, in bits per
	// second; 0 means throttle.rate.
	RateBps uint64
}

// MinTTL is the shortest claim a request may ask for: shorter than a
// detector interval, a throttle is gone before anyone can see it.
const MinTTL = time.Second

// ValidTTL checks a requested claim lifetime: at least MinTTL. Above
// throttle.max_ttl is a refusal by the engine, not a malformed request.
func ValidTTL(d time.Duration) error {
	if d < MinTTL {
		return fmt.Errorf("ttl %s: want at least %s", d, MinTTL)
	}
	return nil
}

// TTLFromSeconds converts a request's ttl_seconds: 0 means throttle.ttl;
// otherwise it must be finite and a ValidTTL. A value too large for a
// time.Duration (about 292 years) is an error, not a wrapped-around TTL.
func TTLFromSeconds(sec float64) (time.Duration, error) {
	switch {
	case sec == 0:
		return 0, nil
	case math.IsNaN(sec) || math.IsInf(sec, 0) || sec < 0 || sec >= math.MaxInt64/float64(time.Second):
		return 0, fmt.Errorf("ttl_seconds %v: want 0 (throttle.ttl) or a number of seconds from %v", sec, MinTTL.Seconds())
	}
	d := time.Duration(sec * float64(time.Second))
	if err := ValidTTL(d); err != nil {
		return 0, fmt.Errorf("ttl_seconds %v: want 0 (throttle.ttl) or at least %v", sec, MinTTL.Seconds())
	}
	return d, nil
}

// Mitigation is the throttle in force on one interface: the union of its
// owners' claims.
type Mitigation struct {
	Interface string `json:"interface"`
	// Interface is the uplink for scopes node and source, the VM's bridge
	// port for scope port.
	Scope   shaper.Scope   `json:"scope"`             // shaper.ScopeSource, shaper.ScopeNode or shaper.ScopePort
	Sources []netip.Prefix `json:"sources,omitempty"` // sorted; empty unless shaper.ScopeSource
	// Protocols are "tcp", "udp", "icmp", sorted; empty = any IP protocol.
	Protocols []string `json:"protocols,omitempty"`
	// Ports are the destination ports of tcp and udp, single or ranges,
	// sorted; empty = any. In JSON a single port is a number, a range
	// "first-last".
	Ports []shaper.PortRange `json:"ports"`
	// RateBps is the lowest rate an owner asked for, in bits per second;
	// 0 means throttle.rate.
	RateBps uint64 `json:"rate_bps,omitempty"`
	// Reason is the reason of the longest-standing owner.
	Reason Reason `json:"reason"`
	// Owners are the owner IDs in the order they joined.
	Owners  []string  `json:"owners"`
	Since   time.Time `json:"since"`
	Expires time.Time `json:"expires"` // the latest claim expiry
}

// Action is what a Decision asks the agent to do.
type Action string

// Actions. Only throttle, update and release change the kernel.
const (
	// ActionThrottle installs a new mitigation.
	ActionThrottle Action = "throttle"
	// ActionUpdate changes an installed mitigation's scope, sources, ports or rate.
	ActionUpdate Action = "update"
	// ActionKeep records a change of owners or expiry that leaves the kernel as it is.
	ActionKeep Action = "keep"
	// ActionRelease removes a mitigation.
	ActionRelease Action = "release"
	// ActionRefuse reports a throttle or update that was not done; the agent
	// logs it, counts it and alerts.
	ActionRefuse Action = "refuse"
	// ActionAlert reports an event that needs a human though nothing was refused.
	ActionAlert Action = "alert"
)

// ErrRefused is what an error wraps when it reports a decision of
// ActionRefuse to a caller that speaks errors: the webhook handler (which
// answers 200 and counts it refused) and the CLI through the agent (which
// exits 1).
var ErrRefused = errors.New("refused by policy")

// Refusal says why an action was refused.
type Refusal string

// Refusals.
const (
	RefusedObserve   Refusal = "observe"    // mode is observe
	RefusedBudget    Refusal = "budget"     // max_actions_per_hour spent
	RefusedPaused    Refusal = "paused"     // the pause file exists
	RefusedWhitelist Refusal = "whitelist"  // a whitelisted port or CIDR would be throttled
	RefusedMaxTTL    Refusal = "max_ttl"    // the request's TTL exceeds max_ttl
	RefusedNoSources Refusal = "no_sources" // scope source but no throttleable source named
	RefusedTarget    Refusal = "target"     // the interface is not watched (internal/netif)
)

// Cause says why a release, keep or alert happened.
type Cause string

// Causes.
const (
	CauseExitAfter Cause = "exit_after" // the detector saw exit_after clean intervals
	CauseReleased  Cause = "released"   // an owner asked for release
	CauseTTL       Cause = "ttl"        // a claim's TTL ran out
	CauseMaxTTL    Cause = "max_ttl"    // the mitigation reached max_ttl
)

// Decision is one thing the agent must do or report. For throttle, update
// and keep, Mitigation is the mitigation now in force; for release and alert,
// the one removed; for refuse, the one in force, if any, while Scope, Sources
// and Ports say what was refused.
type Decision struct {
	Action    Action
	Interface string
	Scope     shaper.Scope
	Sources   []netip.Prefix
	Ports     []shaper.PortRange
	// Reason and Owner name who led to the decision; Owner is empty when a
	// whole mitigation expired.
	Reason         Reason
	Owner          string
	RefusedBecause Refusal // set for ActionRefuse
	Cause          Cause   // set for release, keep (when an owner left) and alert
	Detail         string  // one human-readable sentence
	Mitigation     Mitigation
}
