package detect

import (
	"net"
	"net/netip"
	"time"
)

// Counts is what a capture observed on one interface during one interval (estimates, scaled up if sampled).
type Counts struct {
	SynOut, SynAckIn, RstOut uint64                          // TCP; RstOut: bare RSTs (no ACK) out
	CloseOut                 uint64                          // FIN or RST|ACK out: connections this side completed and closed
	UDPOut, UDPIn            uint64                          // UDP to/from the throttled ports
	Destinations             uint64                          // distinct destination addresses (estimate)
	DstPorts                 map[uint16]uint64               // SYNs+UDP out by destination port (capped: top N)
	Sources                  map[netip.Addr]uint64           // SYNs+UDP out by source address (capped)
	SourceMACs               map[netip.Addr]net.HardwareAddr // for attribution of bridged traffic
	SampleDsts               []netip.AddrPort                // a few sample destinations
	// SynAckTo counts SYN-ACKs in by destination address, i.e. by the
	// local source whose SYN they answer (capped: top N), so that replies
	// arriving on another interface than the SYNs left by can be matched
	// node-wide (MatchReplies).
	SynAckTo map[netip.Addr]uint64
	// Keys are the per-key verdicts (KeyDetector) of the keys that are not
	// clean at the end of the interval; nil when the capture keeps no
	// per-key accounting.
	Keys []KeyVerdict
}

// Sample is one interval on one interface.
type Sample struct {
	Interface          string
	At                 time.Time
	Interval           time.Duration
	TxBytes, TxPackets uint64 // delta over the interval, from nicstat
	Counts             Counts // from synwatch
}
