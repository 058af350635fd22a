package control

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/attrib"
	"github.com/egressguard/egressguard/shaper"
)

// MitigationStatus is one mitigation as `status --json` and /api/v1/status
// show it (docs/design.md §7): the record, flattened, joined with what the kernel
// holds.
type MitigationStatus struct {
	state.Mitigation
	Expired bool `json:"expired"`
	// Installed is false when the record has no layout in the kernel behind it.
	Installed    bool              `json:"installed"`
	Throttled    shaper.ClassStats `json:"throttled"`
	InspectError string            `json:"inspect_error,omitempty"`
}

// Status is what `egressguard status` reports.
type Status struct {
	Mode string `json:"mode"`
	// Agent is true when a running agent answered; Interfaces is filled only then.
	Agent       bool               `json:"agent"`
	Mitigations []MitigationStatus `json:"mitigations"`
	// Unrecorded names interfaces that carry an egressguard layout with no record.
	Unrecorded []string          `json:"unrecorded,omitempty"`
	Interfaces []InterfaceStatus `json:"interfaces,omitempty"`
	// AttributionWithheld is true when the agent left out the interfaces'
	// attribution because the request did not carry the webhook's bearer
	// token (see /api/v1/status); the root-only socket always has it.
	AttributionWithheld bool `json:"attribution_withheld,omitempty"`
}

// InterfaceStatus is a watched interface's live detection state, filled by
// the agent.
type InterfaceStatus struct {
	Name        string           `json:"name"`
	TxBps       float64          `json:"tx_bps"`
	TxPps       float64          `json:"tx_pps"`
	SynOutPps   float64          `json:"syn_out_pps"`
	SynAckInPps float64          `json:"synack_in_pps"`
	Verdict     string           `json:"verdict"`
	Reasons     []string         `json:"reasons,omitempty"`
	Evidence    *detect.Evidence `json:"evidence,omitempty"`
	// Signature names what floods (protocols, ports, packet size, spoofing,
	// sources, VM ports and their VMs) while the verdict is flood.
	Signature *detect.Signature `json:"signature,omitempty"`
	// Keys are the sources and VM ports judged on their own that are not
	// clean: floods, and ports emitting addresses they do not own.
	Keys []detect.KeyVerdict `json:"keys,omitempty"`
	// Attribution names who sent the latest flood on the interface (sources
	// with MAC and bridge port, processes holding raw or packet sockets).
	Attribution *attrib.Attribution `json:"attribution,omitempty"`
	// Blind says why the interface is not being watched right now (it is
	// missing, or its capture is not bound to it); empty while it is. The
	// verdict of a blind interface is not current.
	Blind string `json:"blind,omitempty"`
	// Watched says why the interface is watched ("default route (ipv4)",
	// "uplink port of bridge vmbr0 …"), and Bridge names the bridge it
	// stands in for, if any (internal/netif).
	Watched string `json:"watched,omitempty"`
	Bridge  string `json:"bridge,omitempty"`
}

// Status reads the state file and the kernel.
func (c *Controller) Status(ctx context.Context, mode string) (Status, error) {
	st, err := c.Load(ctx)
	if err != nil {
		return Status{}, err
	}
	now := c.Now()
	out := Status{Mode: mode, Mitigations: []MitigationStatus{}}
	for _, m := range st.Mitigations {
		out.Mitigations = append(out.Mitigations, c.mitigationStatus(ctx, m, now))
	}
	if roots, err := c.Kernel.Roots(ctx); err == nil {
		for _, name := range slices.Sorted(maps.Keys(roots)) {
			if _, ok := st.Find(name); !ok && roots[name].Ours {
				out.Unrecorded = append(out.Unrecorded, name)
			}
		}
	}
	return out, nil
}

func (c *Controller) mitigationStatus(ctx context.Context, m state.Mitigation, now time.Time) MitigationStatus {
	ms := MitigationStatus{Mitigation: m, Expired: m.Expired(now)}
	inst, err := c.Kernel.Inspect(ctx, m.Interface)
	if err != nil {
		ms.InspectError = err.Error()
		return ms
	}
	ms.Installed = inst.Intact || inst.Legacy
	ms.Throttled = inst.ThrottledStats
	return ms
}
