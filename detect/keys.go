package detect

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/egressguard/egressguard/detect/account"
)

// KeyRates are one key's per-second rates. What the key sent (SYN, UDP,
// ICMP out) is measured over the window that ended rtt_allowance ago; what
// came back and what the key answered with (SYN-ACK, RST, closes, UDP and
// ICMP in), and its transmit rate, over the window and the allowance up to
// now. The reply ratios compare those rates: a healthy peer answering
// within the allowance stays at or above window/(window+allowance) even
// when its traffic stops at once.
type KeyRates struct {
	TxPps          float64 `json:"tx_pps"`
	TxBps          float64 `json:"tx_bps"`
	SynOutPps      float64 `json:"syn_out_pps"`
	SynAckInPps    float64 `json:"synack_in_pps"`
	RstOutPps      float64 `json:"rst_out_pps"`
	CloseOutPps    float64 `json:"close_out_pps"`
	UDPOutPps      float64 `json:"udp_out_pps"`
	UDPInPps       float64 `json:"udp_in_pps"`
	ICMPOutPps     float64 `json:"icmp_out_pps"`
	ICMPInPps      float64 `json:"icmp_in_pps"`
	SpoofedOutPps  float64 `json:"spoofed_out_pps"`
	SynAckRatio    float64 `json:"synack_ratio"`
	RstRatio       float64 `json:"rst_ratio"`
	CloseRatio     float64 `json:"close_ratio"`
	UDPReplyRatio  float64 `json:"udp_reply_ratio"`
	ICMPReplyRatio float64 `json:"icmp_reply_ratio"`
}

// KeyVerdict is the per-key rule's judgement of one key.
type KeyVerdict struct {
	// Key is "interface", "source ADDR", "port NAME", "other sources" or
	// "other ports".
	Key    string     `json:"key"`
	Source netip.Addr `json:"source,omitzero"`
	Port   string     `json:"port,omitempty"`
	State  State      `json:"state"`
	// Suspect is true when the latest tick alone met the flood rule.
	Suspect bool `json:"suspect"`
	// Spoofing is true when the key (a VM port) emits source addresses it
	// does not own, whatever the rate: a signal of its own.
	Spoofing  bool      `json:"spoofing"`
	Reasons   []string  `json:"reasons,omitempty"`
	Rates     KeyRates  `json:"rates"`
	Signature Signature `json:"signature"`
	Since     time.Time `json:"since"`
}

// Inventory is what the node knows of its VM ports.
type Inventory struct {
	// Owned lists, per bridge port, the addresses it owns (learned from the
	// FDB and neighbour tables, or configured).
	Owned map[string][]netip.Addr
	// VMs names the VM behind each bridge port, where known.
	VMs map[string]VM
}

// PortOf returns the bridge port that owns a, or "".
func (inv Inventory) PortOf(a netip.Addr) string {
	for p, as := range inv.Owned {
		if slices.Contains(as, a) {
			return p
		}
	}
	return ""
}

// KeyDetector applies the flood rule of docs/design.md §3 to every key of an
// account.Accounting at every tick (docs/design.md §11): each source address, each
// VM port, the untracked rest and the interface as a whole. It keeps
// per-key hysteresis; it is not safe for concurrent use.
type KeyDetector struct {
	cfg Config
	// recent spans the window and the allowance up to now: replies, resets
	// and closes; lagged is the window that ended one allowance ago: what
	// was sent. A healthy peer's replies to the lagged window all fall in
	// the recent one, even when its traffic stops.
	recent, lagged         account.Span
	recentSecs, laggedSecs float64
	keys                   map[account.Key]*keyState
	// join, when set, credits source keys with their replies on every
	// capture of the node; own and total are its per-Judge scratch.
	join       *KeyReplies
	capture    string
	own, total map[netip.Addr]replyTally
}

type keyState struct {
	hysteresis
	seen bool
}

// NewKeyDetector validates cfg and returns a detector for it.
func NewKeyDetector(cfg Config) (*KeyDetector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	n := KeyTicks(cfg, 0)
	lag := int((cfg.RTTAllowance + cfg.Tick - 1) / cfg.Tick)
	return &KeyDetector{
		cfg:        cfg,
		recent:     account.Span{N: n + lag},
		lagged:     account.Span{N: n, Lag: lag},
		recentSecs: (time.Duration(n+lag) * cfg.Tick).Seconds(),
		laggedSecs: (time.Duration(n) * cfg.Tick).Seconds(),
		keys:       make(map[account.Key]*keyState),
	}, nil
}

// KeyTicks returns how many ticks of history an Accounting needs for cfg
// (extra > 0 adds to it); with extra 0 it is the window in ticks.
func KeyTicks(cfg Config, extra int) int {
	n := int((cfg.Window + cfg.Tick - 1) / cfg.Tick)
	if extra == 0 {
		return n
	}
	return n + int((cfg.RTTAllowance+cfg.Tick-1)/cfg.Tick) + extra
}

// AccountOptions returns the bounds an Accounting needs to feed this
// detector.
func AccountOptions(cfg Config) account.Options {
	return account.Options{MaxSources: cfg.MaxSourcesTracked, MaxPorts: cfg.MaxPortsTracked, Ticks: KeyTicks(cfg, 2)}
}

// ShareReplies makes Judge match source keys' replies across every capture
// that shares j (one per node), this detector's capture being named
// capture; see KeyReplies.
func (d *KeyDetector) ShareReplies(j *KeyReplies, capture string) {
	d.join, d.capture = j, capture
	d.own, d.total = map[netip.Addr]replyTally{}, map[netip.Addr]replyTally{}
}

// Judge evaluates every key of a just after a Tick at now, and returns the
// verdicts of the keys that are not clean, floods first.
func (d *KeyDetector) Judge(now time.Time, a *account.Accounting, inv Inventory) []KeyVerdict {
	for _, st := range d.keys {
		st.seen = false
	}
	credit := d.joinReplies(a)
	var out []KeyVerdict
	a.Each(d.recent, d.lagged, func(r *account.Row) {
		credit(r)
		st, ok := d.keys[r.Key]
		if !ok {
			st = &keyState{hysteresis: hysteresis{state: StateClean, since: now}}
			d.keys[r.Key] = st
		}
		st.seen = true
		if v, ok := d.judge(now, r, st, inv); ok {
			out = append(out, v)
		}
	})
	for k, st := range d.keys {
		if st.seen {
			continue
		}
		// A key that lost its slot (or went quiet long enough to give it
		// back) has no flood left to report.
		delete(d.keys, k)
	}
	slices.SortFunc(out, func(a, b KeyVerdict) int {
		return cmp.Or(cmp.Compare(b.State.rank(), a.State.rank()), cmp.Compare(b.Rates.TxPps, a.Rates.TxPps), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// joinReplies publishes a's source keys to the node's join and returns
// what replaces each row's replies before it is judged: a source key gets
// its share of the node's replies to it (credited), the interface key its
// own replies moved by the same amounts; other keys keep theirs. Without a
// join it changes nothing.
func (d *KeyDetector) joinReplies(a *account.Accounting) func(*account.Row) {
	if d.join == nil {
		return func(*account.Row) {}
	}
	clear(d.own)
	a.Each(d.recent, d.lagged, func(r *account.Row) {
		if r.Key.Kind == account.KeySource {
			d.own[r.Key.Addr] = tallyOf(r.Lagged, r.Recent)
		}
	})
	d.join.publish(d.capture, d.own, d.total)
	var shift [protoCount]int64 // interface key: credited minus own, over sources
	for addr, own := range d.own {
		c := credited(own, d.total[addr])
		for p := range protoCount {
			shift[p] += int64(c[p]) - int64(own.replies[p])
		}
	}
	return func(r *account.Row) {
		switch r.Key.Kind {
		case account.KeySource:
			setReplies(&r.Recent, credited(d.own[r.Key.Addr], d.total[r.Key.Addr]))
		case account.KeyInterface:
			own := tallyOf(r.Lagged, r.Recent).replies
			var c [protoCount]uint64
			for p := range protoCount {
				c[p] = uint64(max(0, int64(own[p])+shift[p]))
			}
			setReplies(&r.Recent, c)
		}
	}
}

// rank orders states by severity.
func (s State) rank() int {
	switch s {
	case StateFlood:
		return 2
	case StateAttention:
		return 1
	}
	return 0
}

func (d *KeyDetector) judge(now time.Time, r *account.Row, st *keyState, inv Inventory) (KeyVerdict, bool) {
	rates := d.rates(r)
	var reasons, protos []string
	if why, ok := d.synRule(rates); ok {
		reasons, protos = append(reasons, why), append(protos, "tcp")
	}
	if why, ok := d.udpRule(rates); ok {
		reasons, protos = append(reasons, why), append(protos, "udp")
	}
	if why, ok := d.icmpRule(rates); ok {
		reasons, protos = append(reasons, why), append(protos, "icmp")
	}
	spoofing := rates.SpoofedOutPps > 0
	if spoofing && rates.SpoofedOutPps > d.cfg.SpoofRateMin {
		reasons = append(reasons, fmt.Sprintf("spoofed sources %.0f/s > %.0f/s (addresses the port does not own)",
			rates.SpoofedOutPps, d.cfg.SpoofRateMin))
	}
	suspect := len(reasons) > 0
	next, why := st.step(now, suspect, false, spoofing, d.cfg.KeyEnterTicks, d.cfg.KeyExitTicks, "ticks")
	switch {
	case why != "":
		reasons = append(reasons, why)
	case next == StateAttention && !suspect:
		reasons = append(reasons, fmt.Sprintf("spoofed sources %.0f/s (addresses the port does not own)", rates.SpoofedOutPps))
	}
	if next == StateClean {
		return KeyVerdict{}, false
	}
	v := KeyVerdict{
		Key: r.Key.String(), Port: r.Key.Port, State: next, Suspect: suspect, Spoofing: spoofing,
		Reasons: reasons, Rates: rates, Since: st.since,
	}
	if r.Key.Kind == account.KeySource {
		v.Source = r.Key.Addr
	}
	v.Signature = d.signature(r, rates, protos, inv)
	return v, true
}

func (d *KeyDetector) rates(r *account.Row) KeyRates {
	in := func(v uint64) float64 { return float64(v) / d.recentSecs }
	out := func(v uint64) float64 { return float64(v) / d.laggedSecs }
	c, l := r.Recent, r.Lagged
	k := KeyRates{
		TxPps:         in(c.PacketsOut),
		TxBps:         in(c.BytesOut) * 8,
		SynOutPps:     out(l.SynOut),
		SynAckInPps:   in(c.SynAckIn),
		RstOutPps:     in(c.RstOut),
		CloseOutPps:   in(c.CloseOut),
		UDPOutPps:     out(l.UDPOut),
		UDPInPps:      in(c.UDPIn),
		ICMPOutPps:    out(l.ICMPOut),
		ICMPInPps:     in(c.ICMPIn),
		SpoofedOutPps: in(c.SpoofedOut),
		RstRatio:      ratio(c.RstOut, c.SynAckIn),
		CloseRatio:    ratio(c.CloseOut, c.SynAckIn),
	}
	k.SynAckRatio = rateRatio(k.SynAckInPps, k.SynOutPps)
	k.UDPReplyRatio = rateRatio(k.UDPInPps, k.UDPOutPps)
	k.ICMPReplyRatio = rateRatio(k.ICMPInPps, k.ICMPOutPps)
	return k
}

func rateRatio(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return num / den
}

// synRule applies the TCP flood rule (synFloodReason) to one key.
func (d *KeyDetector) synRule(r KeyRates) (string, bool) {
	return synFloodReason(d.cfg, r.SynOutPps, r.SynAckInPps, r.SynAckRatio, r.RstRatio, r.CloseRatio)
}

// udpRule: many UDP packets out to any port, few back.
func (d *KeyDetector) udpRule(r KeyRates) (string, bool) {
	if r.UDPOutPps <= d.cfg.UDPRateMin || r.UDPReplyRatio >= d.cfg.UDPReplyRatioMax {
		return "", false
	}
	return fmt.Sprintf("udp out %.0f/s > %.0f/s with reply ratio %.3f < %g",
		r.UDPOutPps, d.cfg.UDPRateMin, r.UDPReplyRatio, d.cfg.UDPReplyRatioMax), true
}

// icmpRule: many ICMP packets out with few replies, or more than anyone
// sends for monitoring whatever the replies.
func (d *KeyDetector) icmpRule(r KeyRates) (string, bool) {
	switch {
	case r.ICMPOutPps > d.cfg.ICMPRateMax:
		return fmt.Sprintf("icmp out %.0f/s > %.0f/s", r.ICMPOutPps, d.cfg.ICMPRateMax), true
	case r.ICMPOutPps > d.cfg.ICMPRateMin && r.ICMPReplyRatio < d.cfg.ICMPReplyRatioMax:
		return fmt.Sprintf("icmp out %.0f/s > %.0f/s with reply ratio %.3f < %g",
			r.ICMPOutPps, d.cfg.ICMPRateMin, r.ICMPReplyRatio, d.cfg.ICMPReplyRatioMax), true
	}
	return "", false
}

// Shares of a protocol's packets that make its top ports the signature: a
// port taking less than portShareMin is not listed, and when the listed
// ports together take less than portCoverMin the flood spreads over ports
// and the signature says any port.
// A protocol carrying less than protoShareMin of a key's packets is left
// out of a signature the spoofing signal alone raised.
const (
	portShareMin  = 0.05
	portCoverMin  = 0.8
	protoShareMin = 0.2
)

func (d *KeyDetector) signature(r *account.Row, rates KeyRates, protos []string, inv Inventory) Signature {
	s := Signature{Protocols: protos}
	if r.Recent.PacketsOut > 0 {
		s.AvgPacketBytes = float64(r.Recent.BytesOut) / float64(r.Recent.PacketsOut)
	}
	if len(s.Protocols) == 0 {
		// Only the spoofing signal: name the protocols that carry at least
		// protoShareMin of what the port sends now.
		totals := map[account.Proto]uint64{}
		var all uint64
		for _, p := range r.Ports {
			if _, ok := totals[p.Proto]; !ok {
				totals[p.Proto] = p.ProtoTotal
				all += p.ProtoTotal
			}
		}
		for _, p := range r.Ports {
			if name := p.Proto.String(); !slices.Contains(s.Protocols, name) && float64(totals[p.Proto]) >= protoShareMin*float64(all) {
				s.Protocols = append(s.Protocols, name)
			}
		}
	}
	s.DstPorts = d.topPorts(r.Ports, s.Protocols)
	s.Spoofed = rates.SpoofedOutPps > 0 && rates.SpoofedOutPps >= rates.TxPps/2
	switch r.Key.Kind {
	case account.KeySource:
		s.Sources = []netip.Addr{r.Key.Addr}
		if p := inv.PortOf(r.Key.Addr); p != "" {
			s.Ports = []string{p}
		}
	case account.KeyPort:
		s.Ports = []string{r.Key.Port}
		if !s.Spoofed {
			s.Sources = slices.Clone(inv.Owned[r.Key.Port])
		}
	}
	for _, p := range s.Ports {
		if vm, ok := inv.VMs[p]; ok {
			s.VMs = append(s.VMs, vm)
		}
	}
	return s
}

// topPorts picks the destination ports of the flooding protocols; ICMP has
// none. Nil means any port.
func (d *KeyDetector) topPorts(ports []account.PortCount, protos []string) []uint16 {
	var out []uint16
	cover := map[account.Proto]float64{}
	for _, p := range ports {
		if p.Proto == account.ProtoICMP || p.Proto == account.ProtoOther || !slices.Contains(protos, p.Proto.String()) || p.ProtoTotal == 0 {
			continue
		}
		share := float64(p.Count-p.Err) / float64(p.ProtoTotal)
		if share < portShareMin || len(out) >= d.cfg.TopN {
			continue
		}
		cover[p.Proto] += share
		if !slices.Contains(out, p.Port) {
			out = append(out, p.Port)
		}
	}
	for _, name := range protos {
		if name == "tcp" || name == "udp" {
			proto := account.ProtoTCP
			if name == "udp" {
				proto = account.ProtoUDP
			}
			if cover[proto] < portCoverMin {
				return nil
			}
		}
	}
	return out
}
