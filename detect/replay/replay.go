// Package replay runs the live agent's counting and detector over a capture
// file at the capture's own timestamps: packets are decoded by package
// packet, counted by synwatch.Counter and judged by detect.Detector exactly as
// the AF_PACKET capture's packets are, one detector interval at a time. It is
// what `egressguard replay` prints, and how public captures become tests.
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

// NodeKey is the key of the node-wide aggregate: the one the detector
// judges today, like an interface of the live agent.
const NodeKey = "node"

// maxIdleIntervals bounds how many empty intervals a gap in the capture
// replays: after enough clean intervals to leave any flood (exit_after) the
// state no longer changes, so a capture with a gap of years stays cheap.
const maxIdleIntervals = 1000

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
}

// Signature names what floods, from the verdict's evidence.
type Signature struct {
	Protocols      []string     `json:"protocols"`           // "tcp" (SYNs), "udp"
	DstPorts       []uint16     `json:"dst_ports,omitempty"` // top destination ports
	AvgPacketBytes float64      `json:"avg_packet_bytes"`    // of the node's outgoing packets
	Sources        []netip.Addr `json:"sources,omitempty"`   // top source addresses
}

// Event is a change of a key's state.
type Event struct {
	File      string          `json:"file"`
	Offset    time.Duration   `json:"-"`
	OffsetSec float64         `json:"offset_seconds"` // from the first packet to the end of the interval that changed
	Key       string          `json:"key"`
	State     detect.State    `json:"state"`
	Reasons   []string        `json:"reasons,omitempty"`
	Signature *Signature      `json:"signature,omitempty"`
	Evidence  detect.Evidence `json:"evidence"`
}

// Summary is what one capture amounted to.
type Summary struct {
	File             string        `json:"file"`
	Packets          int           `json:"packets"`
	Outgoing         int           `json:"outgoing"`         // packets read as sent by the node
	NoDirection      int           `json:"no_direction"`     // packets neither from nor to a local address
	Duration         time.Duration `json:"-"`                // first to last packet
	DurationSec      float64       `json:"duration_seconds"` // the same in seconds
	Intervals        int           `json:"intervals"`        // detector intervals judged
	Flooded          []string      `json:"flooded"`          // keys that reached flood
	FirstVerdict     time.Duration `json:"-"`                // offset of the first flood verdict; valid when Flooded is not empty
	FirstVerdictSec  *float64      `json:"first_verdict_seconds"`
	Verdicts         []Event       `json:"events"`            // every state change, in order
	DecodeIncomplete int           `json:"decode_incomplete"` // packets cut short inside a header (counted as far as decoded)
}

// ErrNoDirection is returned when the capture records no direction for a
// packet and the options give none.
var ErrNoDirection = errors.New("no direction")

// Run replays r through the detector and returns its summary; onEvent, if
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
	s := &run{
		o:       o,
		det:     det,
		counter: synwatch.NewCounter(o.Ports, o.Detect.TopN, 1),
		state:   map[string]detect.State{},
		sum:     Summary{File: r.Name(), Flooded: []string{}, Verdicts: []Event{}},
		onEvent: onEvent,
	}
	err = s.read(r)
	if err == nil && s.sum.Packets > 0 {
		s.close(s.winEnd)
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
	state   map[string]detect.State
	sum     Summary
	onEvent func(Event)

	first, winEnd      time.Time
	txBytes, txPackets uint64
	pkt                packet.Packet
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
			s.first, s.winEnd = rec.Time, rec.Time.Add(s.o.Interval)
		}
		s.sum.Packets++
		s.sum.Duration = rec.Time.Sub(s.first)
		s.advance(rec.Time)
		if err := packet.Decode(rec.Link, rec.Data, &s.pkt); err != nil && s.pkt.IPVersion != 0 {
			s.sum.DecodeIncomplete++
		}
		out, known := s.direction(&rec)
		if !known {
			if s.o.Direction == Auto && len(s.o.Local) == 0 {
				return &capfile.Error{File: r.Name(), Packet: rec.Number, Msg: fmt.Sprintf(
					"%v recorded (link type %s): give --local CIDR (the node's and its VMs' addresses) or --direction out",
					ErrNoDirection, rec.Link)}
			}
			s.sum.NoDirection++
			continue
		}
		if out {
			s.sum.Outgoing++
			s.txPackets++
			s.txBytes += uint64(rec.Length)
		}
		s.counter.Add(&s.pkt, out, 1)
	}
}

// direction returns whether the packet was sent by the node, and whether
// that is known at all.
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
	switch d {
	case packet.DirOut:
		return true, true
	case packet.DirIn:
		return false, true
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

// advance closes every interval that ends at or before t.
func (s *run) advance(t time.Time) {
	idle := 0
	for !t.Before(s.winEnd) {
		s.close(s.winEnd)
		s.winEnd = s.winEnd.Add(s.o.Interval)
		if idle++; idle == maxIdleIntervals {
			// Skip the rest of the gap: the state stopped changing long ago.
			n := t.Sub(s.winEnd) / s.o.Interval
			s.winEnd = s.winEnd.Add(n * s.o.Interval)
			for !t.Before(s.winEnd) {
				s.winEnd = s.winEnd.Add(s.o.Interval)
			}
		}
	}
}

// close judges the interval that ends at end. A capture's last interval is
// judged whole: per-second thresholds see only what the capture holds, as
// if nothing more came before the interval's end.
func (s *run) close(end time.Time) {
	c := s.counter.Collect()
	sample := detect.Sample{Interface: NodeKey, At: end, Interval: s.o.Interval,
		TxBytes: s.txBytes, TxPackets: s.txPackets, Counts: c}
	s.txBytes, s.txPackets = 0, 0
	s.sum.Intervals++
	v := s.det.Observe(sample)
	if prev, ok := s.state[v.Interface]; (ok && prev == v.State) || (!ok && v.State == detect.StateClean) {
		return
	}
	s.state[v.Interface] = v.State
	off := end.Sub(s.first)
	e := Event{File: s.sum.File, Offset: off, OffsetSec: off.Seconds(), Key: v.Interface, State: v.State, Reasons: v.Reasons, Evidence: v.Evidence}
	if v.State != detect.StateClean {
		e.Signature = signature(v.Evidence)
	}
	if v.State == detect.StateFlood && !slices.Contains(s.sum.Flooded, v.Interface) {
		if len(s.sum.Flooded) == 0 {
			s.sum.FirstVerdict = off
		}
		s.sum.Flooded = append(s.sum.Flooded, v.Interface)
	}
	s.sum.Verdicts = append(s.sum.Verdicts, e)
	if s.onEvent != nil {
		s.onEvent(e)
	}
}

// signature reads what floods from a verdict's evidence.
func signature(ev detect.Evidence) *Signature {
	sig := &Signature{AvgPacketBytes: ev.AvgPacketBytes}
	if ev.SynOutPps > 0 {
		sig.Protocols = append(sig.Protocols, "tcp")
	}
	if ev.UDPOutPps > 0 {
		sig.Protocols = append(sig.Protocols, "udp")
	}
	for _, p := range ev.TopDstPorts {
		sig.DstPorts = append(sig.DstPorts, p.Port)
	}
	for _, src := range ev.TopSources {
		sig.Sources = append(sig.Sources, src.Addr)
	}
	return sig
}
