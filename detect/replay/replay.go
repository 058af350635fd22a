// Package replay runs the live agent's counting and detectors over a capture
// file at the capture's own timestamps: packets are decoded by package
// packet and counted by synwatch.Counter exactly as the AF_PACKET capture's
// packets are; every detect.tick the Counter's detect.KeyDetector judges
// each key (source address, VM bridge port, the interface aggregate), and
// every detector interval detect.Detector judges the node, at once when a
// key turns flood, as the agent does. It is what `egressguard replay`
// prints, and how public captures become tests.
package replay

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/capfile"
	"github.com/egressguard/egressguard/detect/packet"
	"github.com/egressguard/egressguard/detect/synwatch"
)

// Direction says how replay decides which packets the node sent.
type Direction string

// Directions: Auto takes the capture's own record (Linux cooked captures'
// packet type, pcapng's epb_flags), else Options.Local; Out reads every
// packet as the node's egress (what a victim-side flood capture would have
// been at the sender); In reads every packet as received.
const (
	Auto Direction = "auto"
	Out  Direction = "out"
	In   Direction = "in"
)

// ParseDirection parses the --direction flag.
func ParseDirection(s string) (Direction, error) {
	switch d := Direction(s); d {
	case Auto, Out, In:
		return d, nil
	}
	return "", fmt.Errorf("direction %q: want in, out or auto", s)
}

// NodeKey names the verdict detect.Detector gives each interval: the one
// the live agent acts on for an interface (its policy, throttle and
// evidence), flood as soon as any key floods.
const NodeKey = "node"

// maxIdleSteps bounds how many empty ticks and intervals a gap in the
// capture replays: after enough clean ones to leave any flood (exit_after,
// key_exit_ticks) the state no longer changes, so a capture with a gap of
// years stays cheap.
const maxIdleSteps = 2000

// Options configure a replay.
type Options struct {
	Detect    detect.Config
	Interval  time.Duration  // detector interval; the agent's detect.interval
	Ports     []uint16       // UDP ports counted (throttle.ports)
	Direction Direction      // "" = Auto
	Local     []netip.Prefix // the node's and its VMs' addresses, for Auto
	// LocalFrom names where Local came from, for the error when no packet
	// matches it ("--local", "config interfaces eth0").
	LocalFrom string
	// LocalErr says why Local is empty when it could not be found (a
	// configured interface missing here); it is reported only if a packet
	// needs it.
	LocalErr error
}

// Event is a change of a key's state: a key of the per-key rule ("source
// ADDR", "port NAME", "interface", "other sources", "other ports") at a
// detect.tick, or NodeKey at a detector interval.
type Event struct {
	File      string            `json:"file"`
	Offset    time.Duration     `json:"-"`
	OffsetSec float64           `json:"offset_seconds"` // from the first packet to the tick or interval end that changed
	Key       string            `json:"key"`
	State     detect.State      `json:"state"`
	Reasons   []string          `json:"reasons,omitempty"`
	Signature *detect.Signature `json:"signature,omitempty"` // keys: when not clean; node: when flood
	Rates     *detect.KeyRates  `json:"rates,omitempty"`     // keys
	Evidence  *detect.Evidence  `json:"evidence,omitempty"`  // node
}

// Summary is what one capture amounted to.
type Summary struct {
	File             string        `json:"file"`
	Packets          int           `json:"packets"`
	Outgoing         int           `json:"outgoing"`         // packets read as sent by the node or a VM
	NoDirection      int           `json:"no_direction"`     // packets neither from nor to a local address
	Weighted         uint64        `json:"weighted"`         // packets the records stand for (sampled captures: Σ sample_every)
	Duration         time.Duration `json:"-"`                // first to last packet
	DurationSec      float64       `json:"duration_seconds"` // the same in seconds
	Ticks            int           `json:"ticks"`            // detect.tick steps judged
	Intervals        int           `json:"intervals"`        // detector intervals judged
	Flooded          []string      `json:"flooded"`          // keys that reached flood, in order
	FirstVerdict     time.Duration `json:"-"`                // offset of the first flood verdict; valid when Flooded is not empty
	FirstVerdictSec  *float64      `json:"first_verdict_seconds"`
	Verdicts         []Event       `json:"events"`            // every state change, in order
	DecodeIncomplete int           `json:"decode_incomplete"` // packets cut short inside a header (counted as far as decoded)
}

// ErrNoDirection is returned when the capture records no direction for a
// packet and the options give none.
var ErrNoDirection = errors.New("no direction")

// Run replays r through the detectors and returns its summary; onEvent, if
// set, sees each state change as it happens. Errors are the reader's
// (*capfile.Error, naming the file and packet) or a direction error naming
// the flag to give; the summary holds what was replayed before the error.
func Run(r *capfile.Reader, o Options, onEvent func(Event)) (Summary, error) {
	if o.Direction == "" {
		o.Direction = Auto
	}
	if o.Interval <= 0 {
		return Summary{}, fmt.Errorf("replay: interval %s: want a positive duration", o.Interval)
	}
	det, err := detect.NewDetector(o.Detect)
	if err != nil {
		return Summary{}, err
	}
	counter, err := synwatch.NewCounter(o.Ports, o.Detect.TopN, 1, o.Detect)
	if err != nil {
		return Summary{}, err
	}
	s := &run{
		o:       o,
		det:     det,
		counter: counter,
		state:   map[string]detect.State{},
		sum:     Summary{File: r.Name(), Flooded: []string{}, Verdicts: []Event{}},
		onEvent: onEvent,
		history: time.Duration(detect.AccountOptions(o.Detect).Ticks) * o.Detect.Tick,
	}
	err = s.read(r)
	if err == nil && s.sum.Packets > 0 {
		s.finish()
	}
	if err == nil && s.sum.Packets > 0 && s.sum.NoDirection == s.sum.Packets {
		err = &capfile.Error{File: r.Name(), Packet: 0, Msg: fmt.Sprintf(
			"%v: no packet is from or to the local addresses (%s); give --local CIDR (the node's and its VMs' addresses) or --direction out",
			ErrNoDirection, o.LocalFrom)}
	}
	s.sum.DurationSec = s.sum.Duration.Seconds()
	if len(s.sum.Flooded) > 0 {
		v := s.sum.FirstVerdict.Seconds()
		s.sum.FirstVerdictSec = &v
	}
	return s.sum, err
}

type run struct {
	o       Options
	det     *detect.Detector
	counter *synwatch.Counter
	state   map[string]detect.State // keys and NodeKey not clean
	sum     Summary
	onEvent func(Event)
	history time.Duration // what the per-key accounting remembers

	first, last                 time.Time
	nextTick, winEnd, lastClose time.Time
	txBytes, txPackets          uint64
	pkt                         packet.Packet
}

func (s *run) read(r *capfile.Reader) error {
	var rec capfile.Record
	for {
		err := r.Next(&rec)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if s.sum.Packets == 0 {
			s.first, s.lastClose = rec.Time, rec.Time
			s.nextTick, s.winEnd = rec.Time.Add(s.o.Detect.Tick), rec.Time.Add(s.o.Interval)
		}
		s.sum.Packets++
		s.last = rec.Time
		s.sum.Duration = rec.Time.Sub(s.first)
		s.advance(rec.Time)
		if err := packet.Decode(rec.Link, rec.Data, &s.pkt); err != nil && s.pkt.IPVersion != 0 {
			s.sum.DecodeIncomplete++
		}
		out, known := s.direction(&rec)
		if !known {
			if s.o.Direction == Auto && len(s.o.Local) == 0 {
				from := ""
				if s.o.LocalErr != nil {
					from = " (" + s.o.LocalErr.Error() + ")"
				}
				return &capfile.Error{File: r.Name(), Packet: rec.Number, Msg: fmt.Sprintf(
					"%v recorded (link type %s)%s: give --local CIDR (the node's and its VMs' addresses) or --direction out",
					ErrNoDirection, rec.Link, from)}
			}
			s.sum.NoDirection++
			continue
		}
		every := max(rec.SampleEvery, 1)
		s.sum.Weighted += uint64(every)
		w := s.counter.Add(&s.pkt, out, rec.Port, every, rec.Filtered)
		if w == 0 {
			w = uint64(every) // not IP: it was sent all the same
		}
		if out {
			s.sum.Outgoing++
			// What the uplink transmitted, as its counters would say.
			if rec.Port == "" {
				s.txPackets += w
				s.txBytes += w * uint64(rec.Length)
			}
		}
	}
}

// direction returns whether the packet was sent by the node or one of its
// VMs, and whether that is known at all. A frame on a VM's bridge port
// (Record.Port) was sent by the VM when the port received it.
func (s *run) direction(rec *capfile.Record) (out, known bool) {
	switch s.o.Direction {
	case Out:
		return true, true
	case In:
		return false, true
	}
	d := rec.Direction
	if d == packet.DirUnknown {
		d = s.pkt.Direction
	}
	switch {
	case d == packet.DirOut:
		return rec.Port == "", true
	case d == packet.DirIn:
		return rec.Port != "", true
	}
	if s.pkt.IPVersion == 0 {
		return false, len(s.o.Local) > 0 // not IP: nothing to count either way
	}
	for _, p := range s.o.Local {
		if p.Contains(s.pkt.Src) {
			return true, true
		}
	}
	for _, p := range s.o.Local {
		if p.Contains(s.pkt.Dst) {
			return false, true
		}
	}
	return false, false
}

// advance runs every tick and closes every interval that ends at or before
// t, ticks first when both fall at once.
func (s *run) advance(t time.Time) {
	idle := 0
	for {
		if s.nextTick.After(t) && s.winEnd.After(t) {
			return
		}
		if !s.nextTick.After(s.winEnd) {
			s.tick(s.nextTick)
			s.nextTick = s.nextTick.Add(s.o.Detect.Tick)
		} else {
			s.close(s.winEnd)
			s.winEnd = s.winEnd.Add(s.o.Interval)
		}
		if idle++; idle == maxIdleSteps {
			// Skip the rest of the gap: the state stopped changing long
			// ago. Both clocks keep their phase.
			s.nextTick = skip(s.nextTick, t, s.o.Detect.Tick)
			s.winEnd = skip(s.winEnd, t, s.o.Interval)
			s.lastClose = s.winEnd.Add(-s.o.Interval)
		}
	}
}

// skip returns the first time after t that is from plus whole steps.
func skip(from, t time.Time, step time.Duration) time.Time {
	if from.After(t) {
		return from
	}
	n := t.Sub(from)/step + 1
	return from.Add(n * step)
}

// finish judges what the capture's last packets left: the per-key history
// runs on as if nothing followed them (so the last SYNs get their RTT
// allowance and window), and the interval holding the last packet is
// judged whole.
func (s *run) finish() {
	s.advance(s.last.Add(s.history))
	if !s.lastClose.After(s.last) {
		s.close(s.winEnd)
	}
}

// tick judges every key at now and reports the keys whose state changed;
// a key turning flood closes the interval at once, as the live capture
// wakes the agent.
func (s *run) tick(now time.Time) {
	s.sum.Ticks++
	keys := s.counter.Tick(now, detect.Inventory{})
	seen := make(map[string]bool, len(keys))
	flood := false
	for i := range keys {
		k := &keys[i]
		seen[k.Key] = true
		if s.state[k.Key] == k.State {
			continue
		}
		flood = flood || k.State == detect.StateFlood
		s.state[k.Key] = k.State
		sig, rates := k.Signature, k.Rates
		s.emit(now, Event{Key: k.Key, State: k.State, Reasons: k.Reasons, Signature: &sig, Rates: &rates})
	}
	for key, st := range s.state {
		if key == NodeKey || seen[key] || st == detect.StateClean {
			continue
		}
		delete(s.state, key)
		s.emit(now, Event{Key: key, State: detect.StateClean})
	}
	if flood && now.After(s.lastClose) && now.Before(s.winEnd) {
		s.close(now)
	}
}

// close judges the node over the interval from the previous close to end.
// A capture's last interval is judged whole: per-second thresholds see only
// what the capture holds, as if nothing more came before the interval's end.
func (s *run) close(end time.Time) {
	interval := end.Sub(s.lastClose)
	s.lastClose = end
	c := s.counter.Collect()
	sample := detect.Sample{Interface: NodeKey, At: end, Interval: interval,
		TxBytes: s.txBytes, TxPackets: s.txPackets, Counts: c}
	s.txBytes, s.txPackets = 0, 0
	s.sum.Intervals++
	v := s.det.Observe(sample)
	if prev, ok := s.state[NodeKey]; (ok && prev == v.State) || (!ok && v.State == detect.StateClean) {
		return
	}
	s.state[NodeKey] = v.State
	ev := v.Evidence
	s.emit(end, Event{Key: NodeKey, State: v.State, Reasons: v.Reasons, Signature: v.Signature, Evidence: &ev})
}

func (s *run) emit(at time.Time, e Event) {
	off := at.Sub(s.first)
	e.File, e.Offset, e.OffsetSec = s.sum.File, off, off.Seconds()
	if e.State == detect.StateFlood && !slices.Contains(s.sum.Flooded, e.Key) {
		if len(s.sum.Flooded) == 0 {
			s.sum.FirstVerdict = off
		}
		s.sum.Flooded = append(s.sum.Flooded, e.Key)
	}
	s.sum.Verdicts = append(s.sum.Verdicts, e)
	if s.onEvent != nil {
		s.onEvent(e)
	}
}
