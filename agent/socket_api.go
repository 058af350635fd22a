package agent

import (
	"net/netip"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/shaper"
)

// ThrottleRequest is the CLI's throttle sent over the unix socket.
type ThrottleRequest struct {
	// Interface is the uplink, or with scope "port" the VM's bridge port.
	Interface string `json:"interface"`
	// Scope is "port" or absent (node, or source when Sources are named).
	Scope   shaper.Scope `json:"scope,omitempty"`
	RateBps uint64       `json:"rate_bps"`
	// Protocols: "tcp", "udp", "icmp"; absent = throttle.protocols, [] = any.
	Protocols *[]string `json:"protocols,omitempty"`
	// Ports: numbers or "first-last" ranges; absent = throttle.ports, [] = any.
	Ports      *[]shaper.PortRange `json:"ports,omitempty"`
	Sources    []netip.Prefix      `json:"sources,omitempty"`
	TTLSeconds float64             `json:"ttl_seconds"`
}

// UnthrottleRequest is the CLI's unthrottle sent over the unix socket.
type UnthrottleRequest struct {
	Interface string `json:"interface,omitempty"`
	All       bool   `json:"all,omitempty"`
}

// ThrottleAnswer is the agent's answer to a ThrottleRequest.
type ThrottleAnswer struct {
	Action     string            `json:"action"`
	Refused    string            `json:"refused,omitempty"`
	Detail     string            `json:"detail,omitempty"`
	Mitigation policy.Mitigation `json:"mitigation"`
}
