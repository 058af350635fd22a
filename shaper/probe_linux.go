package shaper

import (
	"context"
	"fmt"

	"github.com/egressguard/egressguard/internal/features"
)

// Probe reports which optional leaf qdiscs the kernel has; it fails when
// one of what every Plan needs is missing or cannot be probed: htb, cls_bpf
// (its probe hangs on a clsact qdisc, so clsact too), act_mirred and ifb.
// The probes (internal/features) need only CAP_NET_ADMIN, create nothing
// and are cached, so every caller may ask.
func Probe(ctx context.Context) (Features, error) {
	if err := ctx.Err(); err != nil {
		return Features{}, err
	}
	for _, err := range []error{
		features.HaveQdisc("htb"), features.HaveFilter("bpf"), features.HaveAction("mirred"), features.HaveLink("ifb"),
	} {
		if err != nil {
			return Features{}, fmt.Errorf("shaper: probe: %w", err)
		}
	}
	return Features{
		SFQ:     features.HaveQdisc("sfq") == nil,
		FQCodel: features.HaveQdisc("fq_codel") == nil,
	}, nil
}
