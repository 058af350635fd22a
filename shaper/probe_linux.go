package shaper

import (
	"context"
	"fmt"

	"github.com/egressguard/egressguard/internal/features"
)

// Probe reports which optional leaf qdiscs the kernel has; it fails when
// htb or cls_bpf, which every Plan needs, are missing or cannot be probed.
// The probes (internal/features) need only CAP_NET_ADMIN, create nothing
// and are cached, so every caller may ask. clsact, act_mirred and ifb have
// no probe there: Apply names the one missing when it fails, and undoes
// what it wrote.
func Probe(ctx context.Context) (Features, error) {
	if err := ctx.Err(); err != nil {
		return Features{}, err
	}
	if err := features.HaveQdisc("htb"); err != nil {
		return Features{}, fmt.Errorf("shaper: probe: %w", err)
	}
	if err := features.HaveFilter("bpf"); err != nil {
		return Features{}, fmt.Errorf("shaper: probe: %w", err)
	}
	return Features{
		SFQ:     features.HaveQdisc("sfq") == nil,
		FQCodel: features.HaveQdisc("fq_codel") == nil,
	}, nil
}
