package detect

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Detector turns each interface's sequence of samples into verdicts. It keeps
// per-interface state (hysteresis counters and a transmit-rate baseline) and
// is safe for concurrent use.
type Detector struct {
	cfg Config

	mu     sync.Mutex
	ifaces map[string]*ifaceState
}

type ifaceState struct {
	hysteresis
	baseline float64
	samples  int // intervals folded into baseline
	// sig is the signature of the last suspect flood interval: a flood that
	// goes on only by hysteresis keeps it, so the throttle's match does not
	// drift to whatever healthy traffic is left.
	sig *Signature
}

// NewDetector returns a Detector for cfg, or the validation error naming the
// offending field.
func NewDetector(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	return &Detector{cfg: cfg, ifaces: make(map[string]*ifaceState)}, nil
}

// Observe folds one sample into its interface's state and returns the
// verdict. Counts are taken as offered load: once the interface is throttled,
// the caller may add what the shaper dropped so that a throttled flood still
// reads as one. A sample whose Interval is not positive carries no rates:
// Observe returns the interface's current state and changes nothing.
func (d *Detector) Observe(s Sample) Verdict {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.ifaces[s.Interface]
	if !ok {
		st = &ifaceState{hysteresis: hysteresis{state: StateClean, since: s.At}}
		d.ifaces[s.Interface] = st
	}
	if s.Interval <= 0 {
		return Verdict{Interface: s.Interface, State: st.state, Since: st.since}
	}

	ev := d.measure(s, st)
	var reasons, protos []string
	suspect := false
	if r, ok := d.synFailing(ev); ok {
		suspect = true
		reasons, protos = append(reasons, r), append(protos, "tcp")
	}
	if r, ok := d.udpFailing(ev); ok {
		suspect = true
		reasons, protos = append(reasons, r), append(protos, "udp")
	}
	floodKeys := 0
	for _, k := range s.Counts.Keys {
		if k.State == StateFlood {
			floodKeys++
			suspect = true
			reasons = append(reasons, k.Key+": "+strings.Join(k.Reasons, "; "))
		}
	}
	attention := d.attention(ev, st)
	reasons = append(reasons, attention...)

	next, why := st.step(s.At, suspect, floodKeys > 0, len(attention) > 0, d.cfg.EnterAfter, d.cfg.ExitAfter, "intervals")
	if why != "" {
		reasons = append(reasons, why)
	}
	// The baseline learns only from intervals that do not look like a flood,
	// so that a flood cannot become its own normal.
	if !suspect && next != StateFlood {
		st.fold(ev.TxPps, d.cfg.BaselineAlpha)
	}
	if next != StateClean {
		d.fillTops(&ev, s.Counts)
	}
	v := Verdict{
		Interface: s.Interface,
		State:     next,
		Suspect:   suspect,
		Reasons:   reasons,
		Evidence:  ev,
		Keys:      s.Counts.Keys,
		Since:     st.since,
	}
	switch {
	case next != StateFlood:
		st.sig = nil
	case suspect || st.sig == nil:
		st.sig = signatureOf(v, protos, s.Counts.SynOut+s.Counts.UDPOut)
	}
	v.Signature = st.sig
	return v
}

// signatureOf unions the signatures of the flooding keys; without any (a
// capture that keeps no per-key accounting, or a flood only the aggregate
// shows) it derives one from the interface's evidence: the protocols of the
// rules that fired (all of TCP and UDP when the flood goes on only by
// hysteresis), the ports that carry most of out packets of the interval,
// the top sources.
func signatureOf(v Verdict, protos []string, out uint64) *Signature {
	var sigs []Signature
	var pkts []float64
	for _, k := range v.Keys {
		if k.State == StateFlood {
			sigs = append(sigs, k.Signature)
			pkts = append(pkts, k.Rates.TxPps)
		}
	}
	if len(sigs) > 0 {
		s := mergeSignatures(sigs, pkts)
		return &s
	}
	ev := v.Evidence
	s := Signature{Protocols: protos, AvgPacketBytes: ev.AvgPacketBytes}
	if len(s.Protocols) == 0 {
		s.Protocols = []string{"tcp", "udp"}
	}
	var top uint64
	for _, p := range ev.TopDstPorts {
		if out > 0 && float64(p.Count)/float64(out) >= portShareMin {
			s.DstPorts = append(s.DstPorts, p.Port)
			top += p.Count
		}
	}
	if float64(top) < portCoverMin*float64(out) {
		s.DstPorts = nil
	}
	for _, src := range ev.TopSources {
		s.Sources = append(s.Sources, src.Addr)
	}
	return &s
}

func (st *ifaceState) fold(pps, alpha float64) {
	if st.samples == 0 {
		st.baseline = pps
	} else {
		st.baseline += alpha * (pps - st.baseline)
	}
	st.samples++
}

// measure computes the rates and ratios of one sample.
func (d *Detector) measure(s Sample, st *ifaceState) Evidence {
	secs := s.Interval.Seconds()
	c := s.Counts
	ev := Evidence{
		TxBps:         float64(s.TxBytes) * 8 / secs,
		TxPps:         float64(s.TxPackets) / secs,
		BaselineTxPps: st.baseline,
		SynOutPps:     float64(c.SynOut) / secs,
		SynAckInPps:   float64(c.SynAckIn) / secs,
		RstOutPps:     float64(c.RstOut) / secs,
		UDPOutPps:     float64(c.UDPOut) / secs,
		UDPInPps:      float64(c.UDPIn) / secs,
		SynAckRatio:   ratio(c.SynAckIn, c.SynOut),
		RstRatio:      ratio(c.RstOut, c.SynAckIn),
		CloseOutPps:   float64(c.CloseOut) / secs,
		CloseRatio:    ratio(c.CloseOut, c.SynAckIn),
		UDPReplyRatio: ratio(c.UDPIn, c.UDPOut),
		FanOut:        c.Destinations,
	}
	if s.TxPackets > 0 {
		ev.AvgPacketBytes = float64(s.TxBytes) / float64(s.TxPackets)
	}
	var top, sum uint64
	for _, n := range c.DstPorts {
		top = max(top, n)
		sum += n
	}
	// DstPorts is capped to the top ports, so the total out is the better
	// denominator when the capture reported it.
	if total := c.SynOut + c.UDPOut; total > 0 {
		sum = max(sum, total)
	}
	ev.PortConcentration = ratio(top, sum)
	return ev
}

func ratio(num, den uint64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

// synFailing applies the TCP flood rule (synFloodReason) to the interface's evidence.
func (d *Detector) synFailing(ev Evidence) (string, bool) {
	return synFloodReason(d.cfg, ev.SynOutPps, ev.SynAckInPps, ev.SynAckRatio, ev.RstRatio, ev.CloseRatio)
}

// synFloodReason is the TCP flood rule of docs/design.md §3, the one copy both the
// interface detector and the per-key detector apply: above cfg.SynRateMin
// SYNs/s out (packets/s), either the handshakes fail (SYN-ACK/SYN below
// cfg.SynAckRatioMax), or they are answered and then reset by a kernel that
// never sent them (bare RST/SYN-ACK above cfg.RstRatioMax, RFC 793 §3.4)
// while the sender closes nothing it opened (close/SYN-ACK below
// cfg.CloseRatioMax). It returns the reason in words and whether it holds.
func synFloodReason(cfg Config, synOutPps, synAckInPps, synAckRatio, rstRatio, closeRatio float64) (string, bool) {
	if synOutPps <= cfg.SynRateMin {
		return "", false
	}
	if synAckRatio < cfg.SynAckRatioMax {
		return fmt.Sprintf("syn out %.0f/s > %.0f/s with syn-ack/syn ratio %.3f < %g",
			synOutPps, cfg.SynRateMin, synAckRatio, cfg.SynAckRatioMax), true
	}
	if synAckInPps > 0 && rstRatio > cfg.RstRatioMax && closeRatio < cfg.CloseRatioMax {
		return fmt.Sprintf("syn out %.0f/s > %.0f/s with rst/syn-ack ratio %.3f > %g and close/syn-ack ratio %.3f < %g (raw-socket pattern: the kernel resets handshakes it never started)",
			synOutPps, cfg.SynRateMin, rstRatio, cfg.RstRatioMax, closeRatio, cfg.CloseRatioMax), true
	}
	return "", false
}

// udpFailing applies the same rule to UDP on the throttled ports: many
// packets out, few back.
func (d *Detector) udpFailing(ev Evidence) (string, bool) {
	if ev.UDPOutPps <= d.cfg.UDPRateMin || ev.UDPReplyRatio >= d.cfg.UDPReplyRatioMax {
		return "", false
	}
	return fmt.Sprintf("udp out to throttled ports %.0f/s > %.0f/s with reply ratio %.3f < %g",
		ev.UDPOutPps, d.cfg.UDPRateMin, ev.UDPReplyRatio, d.cfg.UDPReplyRatioMax), true
}

// attention lists the signals that are worth a look but never a flood on
// their own: a crawler or a NAT gateway trips them with healthy handshakes.
func (d *Detector) attention(ev Evidence, st *ifaceState) []string {
	var out []string
	if ev.FanOut >= d.cfg.FanOutMin {
		out = append(out, fmt.Sprintf("fan-out %d destinations >= %d", ev.FanOut, d.cfg.FanOutMin))
	}
	if out2 := ev.SynOutPps + ev.UDPOutPps; out2 > d.cfg.SynRateMin && ev.PortConcentration >= d.cfg.PortConcentrationMin {
		out = append(out, fmt.Sprintf("port concentration %.2f >= %g at %.0f syn+udp/s",
			ev.PortConcentration, d.cfg.PortConcentrationMin, out2))
	}
	if st.samples >= d.cfg.BaselineWarmup && ev.TxPps >= d.cfg.TxJumpPpsMin &&
		ev.TxPps > d.cfg.TxJumpFactor*st.baseline && ev.AvgPacketBytes <= d.cfg.SmallPacketMax {
		out = append(out, fmt.Sprintf("tx %.0f pps > %gx baseline %.0f pps with %.0f-byte packets",
			ev.TxPps, d.cfg.TxJumpFactor, st.baseline, ev.AvgPacketBytes))
	}
	return out
}

// fillTops copies the top sources, top ports and sample destinations of c
// into ev, bounded by TopN.
func (d *Detector) fillTops(ev *Evidence, c Counts) {
	n := d.cfg.TopN
	if len(c.Sources) > 0 {
		src := make([]SourceCount, 0, len(c.Sources))
		for a, k := range c.Sources {
			sc := SourceCount{Addr: a, Count: k}
			if mac, ok := c.SourceMACs[a]; ok && len(mac) > 0 {
				sc.MAC = mac.String()
			}
			src = append(src, sc)
		}
		slices.SortFunc(src, func(a, b SourceCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), a.Addr.Compare(b.Addr))
		})
		ev.TopSources = src[:min(n, len(src))]
	}
	if len(c.DstPorts) > 0 {
		ports := make([]PortCount, 0, len(c.DstPorts))
		for p, k := range c.DstPorts {
			ports = append(ports, PortCount{Port: p, Count: k})
		}
		slices.SortFunc(ports, func(a, b PortCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Port, b.Port))
		})
		ev.TopDstPorts = ports[:min(n, len(ports))]
	}
	if len(c.SampleDsts) > 0 {
		ev.SampleDsts = slices.Clone(c.SampleDsts[:min(n, len(c.SampleDsts))])
	}
}
