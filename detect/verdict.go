package detect

import (
	"net/netip"
	"time"
)

// State is the detector's judgement of one interface.
type State string

// The states a Verdict can carry. Attention is evidence worth a look; only
// Flood is a verdict anyone acts on.
const (
	StateClean     State = "clean"
	StateAttention State = "attention"
	StateFlood     State = "flood"
)

// Verdict is the detector's answer for one sample of one interface.
type Verdict struct {
	Interface string `json:"interface"`
	State     State  `json:"state"`
	// Suspect is true when this interval alone met the flood rule (failing
	// handshakes or unanswered UDP above the minimum rate), before hysteresis.
	Suspect bool `json:"suspect"`
	// Reasons says in words why the state is not clean; empty when clean.
	Reasons  []string `json:"reasons,omitempty"`
	Evidence Evidence `json:"evidence"`
	// Signature names what floods (protocols, ports, packet size, spoofing,
	// sources, VM ports); set whenever State is flood.
	Signature *Signature `json:"signature,omitempty"`
	// Keys are the sources and VM ports judged on their own that are not
	// clean, floods first: a flooding key is named even when the interface
	// as a whole looks healthy.
	Keys []KeyVerdict `json:"keys,omitempty"`
	// Since is when the interface entered State (the At of that sample).
	Since time.Time `json:"since"`
}

// Evidence is the numbers behind a verdict. Rates are per second over the
// sample's interval. The top lists and sample destinations are filled only
// when the state is not clean, to keep clean intervals cheap.
type Evidence struct {
	TxBps             float64          `json:"tx_bps"` // bits per second
	TxPps             float64          `json:"tx_pps"`
	AvgPacketBytes    float64          `json:"avg_packet_bytes"`
	BaselineTxPps     float64          `json:"baseline_tx_pps"` // the interface's EWMA baseline before this sample
	SynOutPps         float64          `json:"syn_out_pps"`
	SynAckInPps       float64          `json:"synack_in_pps"`
	RstOutPps         float64          `json:"rst_out_pps"`
	UDPOutPps         float64          `json:"udp_out_pps"`
	UDPInPps          float64          `json:"udp_in_pps"`
	SynAckRatio       float64          `json:"synack_ratio"`       // SYN-ACK in / SYN out; 0 when no SYN went out
	RstRatio          float64          `json:"rst_ratio"`          // RST out / SYN-ACK in; 0 when no SYN-ACK came in
	CloseOutPps       float64          `json:"close_out_pps"`      // FIN or RST|ACK out
	CloseRatio        float64          `json:"close_ratio"`        // closes out / SYN-ACK in; 0 when no SYN-ACK came in
	UDPReplyRatio     float64          `json:"udp_reply_ratio"`    // UDP in / UDP out; 0 when none went out
	FanOut            uint64           `json:"fan_out"`            // distinct destinations in the interval
	PortConcentration float64          `json:"port_concentration"` // share of SYN+UDP out to the top port
	TopSources        []SourceCount    `json:"top_sources,omitempty"`
	TopDstPorts       []PortCount      `json:"top_dst_ports,omitempty"`
	SampleDsts        []netip.AddrPort `json:"sample_dsts,omitempty"`
}

// SourceCount is one source address with its SYN+UDP out count in the
// interval and, for bridged traffic, its MAC address in colon-hex form
// (a string so that JSON shows it as an operator would type it).
type SourceCount struct {
	Addr  netip.Addr `json:"addr"`
	MAC   string     `json:"mac,omitempty"`
	Count uint64     `json:"count"`
}

// PortCount is one destination port with its SYN+UDP out count in the interval.
type PortCount struct {
	Port  uint16 `json:"port"`
	Count uint64 `json:"count"`
}
