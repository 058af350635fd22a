package agent

import (
	"net/netip"

	"github.com/egressguard/egressguard/agent/policy"
)

// ThrottleRequest is the CLI's throttle sent over the unix socket.
type ThrottleRequest struct {
	Interface  string         `json:"interface"`
	RateBps    uint64         `json:"rate_bps"`
	Ports      []uint16       `json:"ports,omitempty"`
	Sources    []netip.Prefix `json:"sources,omitempty"`
	TTLSeconds float64        `json:"ttl_seconds"`
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
