package policy

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/shaper"
)

// budgetWindow is the sliding window of Config.MaxActionsPerHour.
const budgetWindow = time.Hour

// Engine holds the mitigations, the detector's episodes and the action
// budget, and decides. It is not safe for concurrent use: the agent calls it
// from one goroutine.
type Engine struct {
	cfg      Config
	ports    []shaper.PortRange     // Config.Ports
	mits     map[string]*mitigation // by interface
	episodes map[string]*episode    // by watched interface, or portEpisode(VM port)
	actions  []time.Time            // throttles and updates inside the budget window
}

// episode is the detector's view of one interface's flood, from its first
// flood interval to exit_after clean intervals later; an interface has one
// only while it lasts.
type episode struct {
	// target is the interface the detector's claim is on: the watched
	// interface, or the VM bridge port of a scope port claim. It is set by
	// the first claim of the episode and kept until the episode ends.
	target  string
	port    bool    // a VM port's episode (portEpisode), target set from its start
	clean   int     // consecutive clean intervals
	refused Refusal // the last refusal reported in this episode
	// suppressed is set when an operator released the detector's
	// mitigation: the detector stays out until the episode ends.
	suppressed bool
}

// New returns an Engine with no mitigations, or the error of cfg.Validate.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Ports = sortPorts(cfg.Ports)
	cfg.Protocols = sortProtocols(cfg.Protocols)
	cfg.WhitelistPorts = sortPorts(cfg.WhitelistPorts)
	cfg.WhitelistCIDRs = sortPrefixes(cfg.WhitelistCIDRs)
	return &Engine{cfg: cfg, ports: shaper.Ports(cfg.Ports...), mits: map[string]*mitigation{}, episodes: map[string]*episode{}}, nil
}

// Mitigations returns the mitigations in force, sorted by interface, for the
// state file and status.
func (e *Engine) Mitigations() []Mitigation {
	out := make([]Mitigation, 0, len(e.mits))
	for _, iface := range slices.Sorted(maps.Keys(e.mits)) {
		out = append(out, e.mits[iface].view())
	}
	return out
}

// Adopt takes over mitigations found at start (the state file, reconciled
// with the kernel), all or none. Each owner gets a claim on the whole
// mitigation expiring at its Expires, since per-owner detail is not stored;
// its Protocols and Ports are what the kernel holds (empty = any). An adopted mitigation whose Since lies in
// the last hour counts against the action budget, so a restart loop cannot
// exceed it. An owner "detector" resumes its flood episode: the mitigation is
// released after exit_after clean intervals or at expiry.
func (e *Engine) Adopt(ms []Mitigation) error {
	seen := map[string]bool{}
	for i, m := range ms {
		switch {
		case m.Interface == "":
			return fmt.Errorf("policy: adopt mitigations[%d].interface %q: want an interface name", i, m.Interface)
		case seen[m.Interface] || e.mits[m.Interface] != nil:
			return fmt.Errorf("policy: adopt mitigations[%d].interface %q: the interface already has a mitigation", i, m.Interface)
		case len(m.Owners) == 0:
			return fmt.Errorf("policy: adopt mitigations[%d].owners []: want at least one owner", i)
		case m.Scope != shaper.ScopeSource && m.Scope != shaper.ScopeNode && m.Scope != shaper.ScopePort:
			return fmt.Errorf("policy: adopt mitigations[%d].scope %q: want source, node or port", i, m.Scope)
		case m.Scope == shaper.ScopeSource && len(m.Sources) == 0:
			return fmt.Errorf("policy: adopt mitigations[%d].sources []: scope source needs sources", i)
		}
		for _, p := range m.Sources {
			if !p.IsValid() {
				return fmt.Errorf("policy: adopt mitigations[%d].sources %q: want a CIDR", i, p)
			}
		}
		seen[m.Interface] = true
	}
	for _, m := range ms {
		n := &mitigation{iface: m.Interface, since: m.Since}
		for _, owner := range slices.Compact(slices.Clone(m.Owners)) {
			n.claims = append(n.claims, claim{
				owner:     owner,
				reason:    adoptedReason(owner, m.Reason),
				scope:     m.Scope,
				sources:   sortPrefixes(m.Sources),
				protocols: sortProtocols(m.Protocols),
				ports:     sortPorts(m.Ports),
				rate:      m.RateBps,
				expires:   m.Expires,
			})
			// The detector's claim resumes its episode: the port's for a
			// scope port claim, else the interface's.
			switch {
			case owner == OwnerDetector && m.Scope == shaper.ScopePort:
				e.episode(portEpisode(m.Interface))
			case owner == OwnerDetector:
				e.episode(m.Interface)
			}
		}
		e.mits[m.Interface] = n
		e.actions = append(e.actions, m.Since)
	}
	slices.SortFunc(e.actions, func(a, b time.Time) int { return a.Compare(b) })
	return nil
}

// adoptedReason guesses an adopted owner's reason: the state file keeps one
// reason per mitigation.
func adoptedReason(owner string, r Reason) Reason {
	switch {
	case owner == OwnerDetector:
		return ReasonDetector
	case r == ReasonWebhook || r == ReasonManual:
		return r
	case owner == string(ReasonManual):
		return ReasonManual
	default:
		return ReasonWebhook
	}
}

// Step runs Expire and then takes one interval's observations (one per
// watched interface), in order.
//
// For each interface the detector runs an episode: it starts at the first
// flood interval and ends after Config.ExitAfter consecutive non-flood
// intervals (a shorter clean blip changes nothing), which releases the
// detector's claim only; webhook and manual owners keep theirs. While the
// flood lasts, the detector's claim is renewed to now+TTL every interval
// (never beyond Since+MaxTTL), and its sources only grow, so a top-talker
// list that reorders or shrinks does not cause updates; a new source causes
// one update, or a switch to node scope when ScopeAuto passes MaxSources.
//
// Sources inside Config.WhitelistCIDRs are dropped. If every source the
// detector names is whitelisted, the interval is refused "whitelist" rather
// than throttling the node: the node scope would throttle the tenants while
// the whitelisted flooder, matched first by the shaper's whitelist filter,
// went on at full speed. With no sources named at all, ScopeAuto throttles
// the node and shaper.ScopeSource refuses "no_sources".
//
// A refusal (observe, paused, budget, whitelist, no_sources) is reported when
// it first happens in an episode or its reason changes, not every interval,
// so observe mode yields one refusal per flood episode. The detector tries
// again every flood interval, so a throttle refused for budget or pause
// happens as soon as the hour slides or the pause file goes. When a mitigation reaches MaxTTL it is released with an alert
// (see Expire); if the flood still goes on, the next flood observation,
// possibly in the same Step, throttles afresh — a new mitigation with the
// current sources, counted against the budget and refused if it is spent.
//
// With throttle.scope auto, a flood whose signature names VM bridge ports
// is judged per port: each named port runs an episode of its own (keyed
// portEpisode(port)) whose claim is scope port on that port, so a second VM
// that starts flooding while the first is throttled gets its own throttle,
// and each is released exit_after intervals after its own flood ends. The
// interface's own episode then takes the observation's Unported sources
// (the node flooding too) or counts the interval as clean. A port episode
// that no observation of the Step names counts a clean interval.
func (e *Engine) Step(now time.Time, obs []Observation) []Decision {
	ds := e.Expire(now)
	named := map[string]bool{}
	for _, o := range obs {
		for _, so := range e.split(o) {
			if so.episode != "" {
				named[so.episode] = true
			}
			ds = append(ds, e.observe(now, so)...)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(e.episodes)) {
		if ep := e.episodes[key]; ep.port && !named[key] {
			ds = append(ds, e.observe(now, Observation{Interface: ep.target, State: detect.StateClean, episode: key})...)
		}
	}
	return ds
}

// portEpisode is the episode key of VM bridge port port.
func portEpisode(port string) string { return "port " + port }

// split turns one interface's observation into the observations its
// episodes take: itself, or, when throttle.scope is auto and the flood's
// signature names VM ports, one flood observation per port (the
// signature's protocols and destination ports, that port alone) and one
// for the interface: a flood of the Unported sources when there are any
// (the node floods too), else clean.
func (e *Engine) split(o Observation) []Observation {
	if e.cfg.Scope != ScopeAuto || o.State != detect.StateFlood || o.Signature == nil || len(o.Signature.Ports) == 0 {
		return []Observation{o}
	}
	out := []Observation{{Interface: o.Interface, State: detect.StateClean}}
	if len(o.Unported) > 0 {
		sig := *o.Signature
		sig.Ports, sig.VMs, sig.Sources = nil, nil, o.Unported
		out[0] = Observation{Interface: o.Interface, State: detect.StateFlood, Signature: &sig, Sources: o.Unported}
	}
	for _, p := range o.Signature.Ports {
		sig := *o.Signature
		sig.Ports, sig.Sources, sig.VMs = []string{p}, nil, nil
		for _, vm := range o.Signature.VMs {
			if vm.Port == p {
				sig.VMs = append(sig.VMs, vm)
			}
		}
		out = append(out, Observation{Interface: o.Interface, State: detect.StateFlood, Signature: &sig, episode: portEpisode(p)})
	}
	return out
}

// episode returns the episode of key, started if there is none: the
// interface key for a watched interface's, portEpisode(port) for a VM
// port's, which targets the port from its start.
func (e *Engine) episode(key string) *episode {
	ep := e.episodes[key]
	if ep == nil {
		ep = &episode{}
		if port, ok := strings.CutPrefix(key, portEpisode("")); ok {
			ep.target, ep.port = port, true
		}
		e.episodes[key] = ep
	}
	return ep
}

func (e *Engine) observe(now time.Time, o Observation) []Decision {
	key := cmp.Or(o.episode, o.Interface)
	if o.State != detect.StateFlood {
		ep := e.episodes[key]
		if ep == nil {
			return nil
		}
		ep.clean++
		if ep.clean < e.cfg.ExitAfter {
			return nil
		}
		delete(e.episodes, key)
		return e.drop(ep.targetOr(o.Interface), func(c claim) bool { return c.owner == OwnerDetector }, OwnerDetector, CauseExitAfter)
	}
	ep := e.episode(key)
	ep.clean = 0
	if ep.suppressed {
		return nil
	}
	var held *claim
	if m := e.mits[ep.targetOr(o.Interface)]; m != nil {
		if c, ok := m.claim(OwnerDetector); ok {
			held = &c
		}
	}
	c, target, d := e.detectorClaim(o, ep.targetOr(o.Interface), held)
	if d.Action != ActionRefuse {
		d = e.apply(now, target, c, e.cfg.TTL)
		if d.Action != ActionRefuse {
			ep.target = target
		}
	}
	switch {
	case d.Action == ActionRefuse:
		if d.RefusedBecause == ep.refused {
			return nil
		}
		ep.refused = d.RefusedBecause
	case d.Action == ActionKeep && held != nil:
		// A renewal: nothing to report every interval.
		ep.refused = ""
		return nil
	default:
		ep.refused = ""
	}
	return []Decision{d}
}

// targetOr is the interface of the episode's claim, or iface before it has one.
func (ep *episode) targetOr(iface string) string {
	if ep.target != "" {
		return ep.target
	}
	return iface
}

// detectorClaim builds the detector's claim from an observation and the claim
// it already holds on target (the interface of the episode's claim), and
// returns the interface the claim goes on, or the refusal when it cannot
// claim anything. The signature gives the claim's protocols and ports (see
// signatureTraffic); a held scope node or scope port claim keeps its scope
// and interface until the episode ends.
func (e *Engine) detectorClaim(o Observation, target string, held *claim) (claim, string, Decision) {
	c := claim{owner: OwnerDetector, reason: ReasonDetector, protocols: e.cfg.Protocols, ports: e.ports}
	refuse := func(r Refusal, detail string) (claim, string, Decision) {
		rc := claim{owner: OwnerDetector, reason: ReasonDetector, scope: shaper.ScopeNode, protocols: c.protocols, ports: c.ports}
		return c, target, e.refuse(o.Interface, rc, r, detail)
	}
	if o.Signature != nil {
		protocols, ports, whitelisted := e.signatureTraffic(*o.Signature)
		c.protocols, c.ports = protocols, ports
		if len(whitelisted) > 0 && len(ports) == 0 && held == nil {
			// Any port would throttle far more than the flood.
			return refuse(RefusedWhitelist, fmt.Sprintf("every top destination port (%v) is whitelisted", whitelisted))
		}
	}
	if held != nil {
		// The traffic is held for the episode, as the detector holds its
		// signature: once throttled, the capture sees only what the
		// shaper lets through (plus the dropped packets it is told of), so
		// a signature drawn then misreads the flood — it stops naming the
		// throttled ports (any port) and may name protocols the flood does
		// not use. Following it would throttle a tenant's healthy traffic
		// by the throttle's own effect. A flood that changes shape is
		// throttled anew in its next episode, or at max_ttl.
		c.protocols, c.ports = held.protocols, held.ports
	}
	switch {
	case held != nil && held.scope == shaper.ScopePort:
		c.scope = shaper.ScopePort
		return c, target, Decision{}
	case held == nil && e.cfg.Scope == ScopeAuto && o.Signature != nil && len(o.Signature.Ports) == 1:
		c.scope = shaper.ScopePort
		return c, o.Signature.Ports[0], Decision{}
	}
	var named, whitelisted []netip.Prefix
	for _, a := range o.Sources {
		if !a.IsValid() {
			continue
		}
		a = a.Unmap()
		p := netip.PrefixFrom(a, a.BitLen())
		if _, ok := e.cfg.cidrWhitelisted(p); ok {
			whitelisted = append(whitelisted, p)
		} else if !slices.Contains(named, p) {
			named = append(named, p)
		}
	}
	if held == nil && len(named) == 0 && len(whitelisted) > 0 {
		return refuse(RefusedWhitelist, fmt.Sprintf("every top source (%v) is whitelisted; throttling the node would not slow them", whitelisted))
	}
	if e.cfg.Scope == shaper.ScopeNode || (held != nil && held.scope == shaper.ScopeNode) {
		c.scope = shaper.ScopeNode
		return c, target, Decision{}
	}
	if held != nil {
		// Held sources come first so that a cap keeps what is installed.
		named = append(slices.Clone(held.sources), slices.DeleteFunc(named, func(p netip.Prefix) bool {
			return slices.Contains(held.sources, p)
		})...)
	}
	switch {
	case e.cfg.Scope == shaper.ScopeSource && len(named) == 0:
		return refuse(RefusedNoSources, "throttle.scope is source but the detector named no source")
	case e.cfg.Scope == shaper.ScopeSource && len(named) > e.cfg.MaxSources:
		named = named[:e.cfg.MaxSources]
	case e.cfg.Scope == ScopeAuto && (len(named) == 0 || len(named) > e.cfg.MaxSources):
		c.scope = shaper.ScopeNode
		return c, target, Decision{}
	}
	c.scope = shaper.ScopeSource
	c.sources = sortPrefixes(named)
	return c, target, Decision{}
}

// signatureTraffic turns a flood's signature into what its throttle matches.
// Protocols: tcp, udp and icmp as the signature names them; "other" (a
// protocol the shaper cannot name) or none named means any IP protocol.
// Ports: the signature's top destination ports, each a single port. The
// detector names top ports only when, for every flooding port-carrying
// protocol, they carry most of its packets (detect.KeyDetector, at least
// portCoverMin of them); a flood spread over many ports has none, and the
// throttle then covers any port, as it does for ICMP, which has none.
// Whitelisted ports (SSH 22, whitelist.ports) are dropped and returned:
// the shaper passes them first anyway and refuses to name them.
func (e *Engine) signatureTraffic(s detect.Signature) (protocols []string, ports []shaper.PortRange, whitelisted []uint16) {
	for _, p := range s.Protocols {
		if !slices.Contains([]string{"tcp", "udp", "icmp"}, p) {
			protocols = nil
			break
		}
		protocols = append(protocols, p)
	}
	for _, p := range s.DstPorts {
		if e.cfg.portWhitelisted(p) {
			whitelisted = append(whitelisted, p)
		} else {
			ports = append(ports, shaper.PortRange{First: p, Last: p})
		}
	}
	return sortProtocols(protocols), sortPorts(ports), whitelisted
}

// Claim records a webhook or manual request as its owner's claim on the
// interface and decides what follows. It returns an error, and changes
// nothing, when the request is malformed; otherwise a Decision: throttle
// (new mitigation), update (the request widens the one in force or changes
// its rate), keep (the request is already covered: its owner and expiry are
// recorded), or refuse. Refusals, in order of precedence: whitelist (a source overlaps
// whitelist.cidrs or a port is 22 or in whitelist.ports), max_ttl (TTL above
// throttle.max_ttl), observe, paused, budget. Manual requests count against
// the action budget but are never refused for it: the budget guards against
// runaway automation, and an operator at the keyboard is the control it
// stands in for. A repeated request with the same ID replaces that owner's
// claim, so webhook redelivery is idempotent.
func (e *Engine) Claim(now time.Time, r Request) (Decision, error) {
	if err := r.Validate(); err != nil {
		return Decision{}, err
	}
	c := e.requestClaim(r)
	for _, p := range c.sources {
		if w, ok := e.cfg.cidrWhitelisted(p); ok {
			return e.refuse(r.Interface, c, RefusedWhitelist, fmt.Sprintf("source %s overlaps whitelisted %s", p, w)), nil
		}
	}
	for _, p := range c.ports {
		// A range may span a whitelisted port: the shaper's whitelist
		// filters, matched first, pass it.
		if p.First == p.Last && e.cfg.portWhitelisted(p.First) {
			return e.refuse(r.Interface, c, RefusedWhitelist, fmt.Sprintf("port %d is whitelisted", p.First)), nil
		}
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = e.cfg.TTL
	}
	if ttl > e.cfg.MaxTTL {
		return e.refuse(r.Interface, c, RefusedMaxTTL, fmt.Sprintf("ttl %s exceeds throttle.max_ttl %s", ttl, e.cfg.MaxTTL)), nil
	}
	return e.apply(now, r.Interface, c, ttl), nil
}

// requestClaim is the claim request r makes, with the config's defaults.
func (e *Engine) requestClaim(r Request) claim {
	c := claim{owner: r.ID, reason: r.Reason, scope: shaper.ScopeNode, sources: sortPrefixes(r.Sources), protocols: e.cfg.Protocols, ports: e.ports, rate: r.RateBps}
	switch {
	case r.Scope == shaper.ScopePort:
		c.scope = shaper.ScopePort
	case c.sources != nil:
		c.scope = shaper.ScopeSource
	}
	if r.Protocols != nil {
		c.protocols = sortProtocols(*r.Protocols)
	}
	if r.Ports != nil {
		c.ports = sortPorts(*r.Ports)
	}
	return c
}

// Validate reports the first malformed field of r, naming it and its value.
// The agent checks a request with it before passing it on, and Throttle
// again; a policy refusal (whitelist, max_ttl) is a Decision, not an error.
func (r Request) Validate() error {
	switch {
	case r.ID == "":
		return fmt.Errorf("policy: request.id %q: want a webhook fingerprint or \"manual\"", r.ID)
	case r.ID == OwnerDetector:
		return fmt.Errorf("policy: request.id %q: reserved for the detector", r.ID)
	case r.Reason != ReasonWebhook && r.Reason != ReasonManual:
		return fmt.Errorf("policy: request.reason %q: want webhook or manual", r.Reason)
	case r.Interface == "":
		return fmt.Errorf("policy: request.interface %q: want an interface name", r.Interface)
	case r.Scope != "" && r.Scope != shaper.ScopePort:
		return fmt.Errorf("policy: request.scope %q: want port, or none (node, or source when sources are named)", r.Scope)
	case r.Scope == shaper.ScopePort && len(r.Sources) > 0:
		return fmt.Errorf("policy: request.sources %v: scope port throttles whatever the VM sends, name no sources", r.Sources)
	case r.TTL != 0:
		if err := ValidTTL(r.TTL); err != nil {
			return fmt.Errorf("policy: request.%w", err)
		}
	}
	if r.RateBps != 0 && (r.RateBps < shaper.MinRate || r.RateBps > shaper.MaxRate) {
		return fmt.Errorf("policy: request.rate_bps %d: want 0 (throttle.rate) or %d to %d bit/s", r.RateBps, uint64(shaper.MinRate), uint64(shaper.MaxRate))
	}
	for _, p := range r.Sources {
		if !p.IsValid() {
			return fmt.Errorf("policy: request.sources %q: want a CIDR like 192.0.2.7/32", p)
		}
	}
	// Protocols and ports are the shaper's to judge (shaper.Spec.Validate,
	// on Preview's mitigation).
	return nil
}

// apply puts claim c, lasting ttl, on iface: a new mitigation, a wider one,
// or the same one with new owners or expiry. Observe mode (for the detector
// and the webhook: observe stops automation, while an operator's explicit
// manual throttle acts in both modes, as the CLI does with no agent running),
// the pause and the budget may refuse it; a claim refused for pause or budget still renews the
// owner's existing claim, so a mitigation in force does not lapse while a
// flood goes on.
func (e *Engine) apply(now time.Time, iface string, c claim, ttl time.Duration) Decision {
	if e.cfg.Mode == ModeObserve && c.reason != ReasonManual {
		return e.refuse(iface, c, RefusedObserve, "mode is observe")
	}
	old := e.mits[iface]
	var next *mitigation
	action := ActionThrottle
	if old == nil {
		next = &mitigation{iface: iface, since: now, claims: []claim{c}}
	} else {
		next = old.with(c)
		action = ActionKeep
		if !sameSpec(old.view(), next.view()) {
			action = ActionUpdate
		}
	}
	until := now.Add(ttl)
	if capAt := next.since.Add(e.cfg.MaxTTL); capAt.Before(until) {
		until = capAt
	}
	if action != ActionKeep {
		refusal, detail := e.mayAct(now, c.reason)
		if refusal != "" {
			if old != nil {
				for i := range old.claims {
					if old.claims[i].owner == c.owner {
						old.claims[i].expires = until
					}
				}
			}
			return e.refuse(iface, c, refusal, detail)
		}
		e.actions = append(e.actions, now)
	}
	c.expires = until
	next = next.with(c)
	e.mits[iface] = next
	v := next.view()
	d := decision(action, v, c.reason, c.owner)
	switch {
	case action == ActionThrottle:
		d.Detail = fmt.Sprintf("throttle %s scope %s until %s", iface, v.Scope, until.Format(time.RFC3339))
	case action == ActionUpdate:
		d.Detail = fmt.Sprintf("update %s to scope %s for %s", iface, v.Scope, c.owner)
	default:
		d.Detail = fmt.Sprintf("%s already throttled as %s asks; claim recorded until %s", iface, c.owner, until.Format(time.RFC3339))
	}
	return d
}

// BudgetLeft returns how many more throttles or updates the action budget
// (throttle.max_actions_per_hour over a sliding hour) allows at now; never
// negative (manual requests may overdraw it).
func (e *Engine) BudgetLeft(now time.Time) int {
	cut := now.Add(-budgetWindow)
	used := 0
	for _, t := range e.actions {
		if t.After(cut) {
			used++
		}
	}
	return max(e.cfg.MaxActionsPerHour-used, 0)
}

// mayAct returns why a new throttle or update may not happen now, if it may not.
func (e *Engine) mayAct(now time.Time, r Reason) (Refusal, string) {
	if e.cfg.paused() {
		return RefusedPaused, "the pause file exists"
	}
	cut := now.Add(-budgetWindow)
	e.actions = slices.DeleteFunc(e.actions, func(t time.Time) bool { return !t.After(cut) })
	if r != ReasonManual && len(e.actions) >= e.cfg.MaxActionsPerHour {
		return RefusedBudget, fmt.Sprintf("%d actions in the last hour, throttle.max_actions_per_hour is %d", len(e.actions), e.cfg.MaxActionsPerHour)
	}
	return "", ""
}

// refuse reports that claim c on iface was refused.
func (e *Engine) refuse(iface string, c claim, r Refusal, detail string) Decision {
	d := Decision{
		Action:         ActionRefuse,
		Interface:      iface,
		Scope:          c.scope,
		Sources:        slices.Clone(c.sources),
		Ports:          slices.Clone(c.ports),
		Reason:         c.reason,
		Owner:          c.owner,
		RefusedBecause: r,
		Detail:         detail,
	}
	if m := e.mits[iface]; m != nil {
		d.Mitigation = m.view()
	}
	return d
}

// decision describes action on mitigation v.
func decision(action Action, v Mitigation, r Reason, owner string) Decision {
	return Decision{
		Action:     action,
		Interface:  v.Interface,
		Scope:      v.Scope,
		Sources:    slices.Clone(v.Sources),
		Ports:      slices.Clone(v.Ports),
		Reason:     r,
		Owner:      owner,
		Mitigation: v,
	}
}

// Release drops owner id's claims: on interface iface, or on every interface
// when iface is empty. An empty id drops every owner (the operator's
// unthrottle). A mitigation left without owners is released; one whose
// remaining owners ask for less is updated (narrowed); otherwise the change
// is a keep. Releases and narrowing updates happen in every mode, paused or
// not, and never count against the budget: they only ever throttle less.
// When the detector's claim is dropped here (id empty or "detector"), the
// detector stays out until its current flood episode ends, so an operator's
// unthrottle is not undone on the next interval. Releasing an unknown owner
// is a no-op. The time is unused (a release takes effect at once); it is
// taken for symmetry with the other calls.
func (e *Engine) Release(_ time.Time, id, iface string) []Decision {
	ifaces := []string{iface}
	if iface == "" {
		ifaces = slices.Sorted(maps.Keys(e.mits))
	}
	var ds []Decision
	for _, name := range ifaces {
		if id == "" || id == OwnerDetector {
			for watched, ep := range e.episodes {
				if ep.targetOr(watched) == name {
					ep.suppressed = true
				}
			}
		}
		ds = append(ds, e.drop(name, func(c claim) bool { return id == "" || c.owner == id }, id, CauseReleased)...)
	}
	return ds
}

// Preview is the mitigation request r alone would install, with the
// config's defaults filled in and its ports as asked, so a caller can have
// the shaper validate it (shaper.Spec.Validate) before Claim.
func (e *Engine) Preview(r Request) Mitigation {
	v := (&mitigation{iface: r.Interface, claims: []claim{e.requestClaim(r)}}).view()
	if r.Protocols != nil {
		v.Protocols = *r.Protocols
	}
	if r.Ports != nil {
		// As asked, duplicates included: the shaper's validation judges them.
		v.Ports = *r.Ports
	}
	return v
}
