package detect

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/egressguard/egressguard/detect/account"
)

// Config holds the detector's thresholds. Start from DefaultConfig and
// override fields; NewDetector validates the result. Rates are per second,
// counts of intervals are consecutive samples of one interface.
type Config struct {
	// SynRateMin is the outbound SYN rate (per second) above which failing
	// handshakes make an interval suspect (detect.syn_rate_min).
	SynRateMin float64 `json:"syn_rate_min" yaml:"syn_rate_min"`
	// SynAckRatioMax: SYN-ACK in / SYN out below this means handshakes fail
	// (detect.synack_ratio_max).
	SynAckRatioMax float64 `json:"synack_ratio_max" yaml:"synack_ratio_max"`
	// RstRatioMax: RST out / SYN-ACK in above this means the kernel resets
	// handshakes it never started, the mark of a raw-socket flood whose victims
	// answer (detect.rst_ratio_max).
	RstRatioMax float64 `json:"rst_ratio_max" yaml:"rst_ratio_max"`
	// CloseRatioMax: the raw-socket rule also needs connection closes out
	// (FIN or RST|ACK) / SYN-ACK in below this. A bare RST to a SYN-ACK looks
	// the same whether the handshake was never started (a raw-socket flood)
	// or already completed and closed (a crawler whose overloaded server
	// retransmits its SYN-ACK): only the second kind of client ever closes
	// the connections it opened.
	CloseRatioMax float64 `json:"close_ratio_max" yaml:"close_ratio_max"`
	// UDPRateMin is the outbound rate (packets per second) of UDP to the
	// throttled ports above which unanswered packets make an interval suspect.
	// It is separate from SynRateMin because a QUIC flow sends far more
	// packets than a TCP connection sends SYNs.
	UDPRateMin float64 `json:"udp_rate_min" yaml:"udp_rate_min"`
	// UDPReplyRatioMax: UDP in / UDP out (throttled ports) below this means
	// the packets go unanswered. QUIC acknowledges at least every few packets,
	// so a healthy upload stays well above the default.
	UDPReplyRatioMax float64 `json:"udp_reply_ratio_max" yaml:"udp_reply_ratio_max"`
	// EnterAfter is how many consecutive suspect intervals make a flood
	// (detect.enter_after).
	EnterAfter int `json:"enter_after" yaml:"enter_after"`
	// ExitAfter is how many consecutive clean intervals end a flood
	// (detect.exit_after).
	ExitAfter int `json:"exit_after" yaml:"exit_after"`

	// FanOutMin: this many distinct destinations in one interval raise
	// attention.
	FanOutMin uint64 `json:"fan_out_min" yaml:"fan_out_min"`
	// PortConcentrationMin: when outbound SYN+UDP exceeds SynRateMin and the top
	// destination port takes at least this share of it, attention is raised.
	PortConcentrationMin float64 `json:"port_concentration_min" yaml:"port_concentration_min"`
	// TxJumpFactor: transmit packets per second above this multiple of the
	// interface's own baseline (an EWMA) raise attention, provided the rate is
	// at least TxJumpPpsMin and the average packet is at most SmallPacketMax
	// bytes (a bulk upload has large packets).
	TxJumpFactor float64 `json:"tx_jump_factor" yaml:"tx_jump_factor"`
	// TxJumpPpsMin is the lowest transmit packet rate a jump is reported at.
	TxJumpPpsMin float64 `json:"tx_jump_pps_min" yaml:"tx_jump_pps_min"`
	// SmallPacketMax is the average packet size in bytes at or below which
	// traffic counts as small-packet.
	SmallPacketMax float64 `json:"small_packet_max" yaml:"small_packet_max"`
	// BaselineAlpha is the EWMA weight of a new interval in the baseline.
	BaselineAlpha float64 `json:"baseline_alpha" yaml:"baseline_alpha"`
	// BaselineWarmup is how many intervals the baseline needs before a jump
	// against it is reported.
	BaselineWarmup int `json:"baseline_warmup" yaml:"baseline_warmup"`
	// TopN bounds the top sources and top destination ports in Evidence.
	TopN int `json:"top_n" yaml:"top_n"`

	// Tick is how often the per-key window slides (detect.tick): at most
	// 100 ms, so a verdict can come within half a second (docs/design.md §11). The
	// default, 50 ms, puts a flood's verdict at the allowance plus about
	// 100 ms (two suspect ticks).
	Tick time.Duration `json:"tick" yaml:"tick"`
	// Window is the span per-key rates are measured over (detect.window).
	Window time.Duration `json:"window" yaml:"window"`
	// RTTAllowance is how long a SYN (or a UDP or ICMP packet) may wait for
	// its answer before it counts as unanswered (detect.rtt_allowance): the
	// rule weighs what was sent in the window that ended RTTAllowance ago
	// against the replies of the latest window. The default, 300 ms, covers
	// intercontinental round trips (Europe–Australia is about 250–290 ms);
	// with synack_ratio_max 0.2 a steady peer stays healthy up to
	// RTTAllowance + 0.8 Window.
	RTTAllowance time.Duration `json:"rtt_allowance" yaml:"rtt_allowance"`
	// KeyEnterTicks is how many consecutive suspect ticks make a key a
	// flood (detect.key_enter_ticks).
	KeyEnterTicks int `json:"key_enter_ticks" yaml:"key_enter_ticks"`
	// KeyExitTicks is how many consecutive clean ticks end a key's flood
	// (detect.key_exit_ticks).
	KeyExitTicks int `json:"key_exit_ticks" yaml:"key_exit_ticks"`
	// ICMPRateMin: ICMP out per second above which few replies make a key
	// suspect (detect.icmp_rate_min).
	ICMPRateMin float64 `json:"icmp_rate_min" yaml:"icmp_rate_min"`
	// ICMPReplyRatioMax: ICMP in / ICMP out below this means the packets go
	// unanswered (detect.icmp_reply_ratio_max).
	ICMPReplyRatioMax float64 `json:"icmp_reply_ratio_max" yaml:"icmp_reply_ratio_max"`
	// ICMPRateMax: ICMP out per second above which a key is suspect even
	// when answered (detect.icmp_rate_max): monitoring sends orders of
	// magnitude less, and a victim answers a ping flood until it saturates.
	ICMPRateMax float64 `json:"icmp_rate_max" yaml:"icmp_rate_max"`
	// SpoofRateMin: a VM port sending more than this many packets per
	// second from addresses it does not own is suspect (detect.spoof_rate_min).
	// Below it the spoofing still shows (attention, metric, status).
	SpoofRateMin float64 `json:"spoof_rate_min" yaml:"spoof_rate_min"`
	// MaxSourcesTracked bounds the source addresses counted exactly
	// (detect.max_sources_tracked); the rest count as one other key.
	MaxSourcesTracked int `json:"max_sources_tracked" yaml:"max_sources_tracked"`
	// MaxPortsTracked bounds the VM bridge ports counted exactly
	// (detect.max_ports_tracked); the rest count as one other key.
	MaxPortsTracked int `json:"max_ports_tracked" yaml:"max_ports_tracked"`
}

// Bounds of detect.tick. The capture's ring hands frames over in blocks
// retired every 20 ms at the latest (docs/design.md §3.2), so a shorter
// tick would see no finer time and would be closed late; above 100 ms a
// verdict could not come within half a second (docs/design.md §11.8).
const (
	MinTick = 20 * time.Millisecond
	MaxTick = 100 * time.Millisecond
)

// DefaultConfig returns the documented defaults (docs/design.md §8 for the detect.*
// keys; the attention thresholds are this package's own).
func DefaultConfig() Config {
	return Config{
		SynRateMin:           2000,
		SynAckRatioMax:       0.2,
		RstRatioMax:          0.5,
		CloseRatioMax:        0.5,
		UDPRateMin:           5000,
		UDPReplyRatioMax:     0.05,
		EnterAfter:           3,
		ExitAfter:            30,
		FanOutMin:            1000,
		PortConcentrationMin: 0.9,
		TxJumpFactor:         4,
		TxJumpPpsMin:         10000,
		SmallPacketMax:       200,
		BaselineAlpha:        0.05,
		BaselineWarmup:       10,
		TopN:                 5,
		Tick:                 50 * time.Millisecond,
		Window:               500 * time.Millisecond,
		RTTAllowance:         300 * time.Millisecond,
		KeyEnterTicks:        2,
		KeyExitTicks:         30,
		ICMPRateMin:          1000,
		ICMPReplyRatioMax:    0.2,
		ICMPRateMax:          20000,
		SpoofRateMin:         100,
		MaxSourcesTracked:    account.DefaultMaxSources,
		MaxPortsTracked:      account.DefaultMaxPorts,
	}
}

// Validate reports the first field whose value makes no sense, naming it and
// the value.
func (c Config) Validate() error {
	positive := []struct {
		name string
		v    float64
	}{
		{"detect.syn_rate_min", c.SynRateMin},
		{"detect.udp_rate_min", c.UDPRateMin},
		{"detect.tx_jump_factor", c.TxJumpFactor},
		{"detect.tx_jump_pps_min", c.TxJumpPpsMin},
		{"detect.small_packet_max", c.SmallPacketMax},
		{"detect.icmp_rate_min", c.ICMPRateMin},
		{"detect.icmp_rate_max", c.ICMPRateMax},
		{"detect.spoof_rate_min", c.SpoofRateMin},
	}
	for _, f := range positive {
		if !(f.v > 0) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%s %v: want a finite number > 0", f.name, f.v)
		}
	}
	fractions := []struct {
		name string
		v    float64
	}{
		{"detect.synack_ratio_max", c.SynAckRatioMax},
		{"detect.close_ratio_max", c.CloseRatioMax},
		{"detect.udp_reply_ratio_max", c.UDPReplyRatioMax},
		{"detect.port_concentration_min", c.PortConcentrationMin},
		{"detect.baseline_alpha", c.BaselineAlpha},
		{"detect.icmp_reply_ratio_max", c.ICMPReplyRatioMax},
	}
	for _, f := range fractions {
		if !(f.v > 0 && f.v <= 1) {
			return fmt.Errorf("%s %v: want a fraction in (0, 1]", f.name, f.v)
		}
	}
	if !(c.RstRatioMax > 0) || math.IsInf(c.RstRatioMax, 0) {
		return fmt.Errorf("detect.rst_ratio_max %v: want a finite number > 0", c.RstRatioMax)
	}
	counts := []struct {
		name string
		v    int
	}{
		{"detect.enter_after", c.EnterAfter},
		{"detect.exit_after", c.ExitAfter},
		{"detect.top_n", c.TopN},
		{"detect.key_enter_ticks", c.KeyEnterTicks},
		{"detect.key_exit_ticks", c.KeyExitTicks},
		{"detect.max_sources_tracked", c.MaxSourcesTracked},
		{"detect.max_ports_tracked", c.MaxPortsTracked},
	}
	for _, f := range counts {
		if f.v < 1 {
			return fmt.Errorf("%s %d: want at least 1", f.name, f.v)
		}
	}
	if c.BaselineWarmup < 0 {
		return fmt.Errorf("detect.baseline_warmup %d: want 0 or more", c.BaselineWarmup)
	}
	if c.Tick < MinTick || c.Tick > MaxTick {
		return fmt.Errorf("detect.tick %s: want a duration from %s to %s", c.Tick, MinTick, MaxTick)
	}
	if c.Window < c.Tick || c.Window > 10*time.Second {
		return fmt.Errorf("detect.window %s: want a duration from detect.tick (%s) to 10s", c.Window, c.Tick)
	}
	if c.RTTAllowance < 0 || c.RTTAllowance > 10*time.Second {
		return fmt.Errorf("detect.rtt_allowance %s: want a duration from 0 to 10s", c.RTTAllowance)
	}
	if c.FanOutMin < 1 {
		return fmt.Errorf("detect.fan_out_min %d: want at least 1", c.FanOutMin)
	}
	return c.validAccounting()
}

// validAccounting applies the accounting's own bounds (account.Options)
// to what this config asks of it, naming the config keys at fault.
func (c Config) validAccounting() error {
	o := AccountOptions(c)
	var be *account.BoundError
	if err := o.Validate(); !errors.As(err, &be) {
		return err
	}
	switch be.Field {
	case "max_sources":
		return fmt.Errorf("detect.max_sources_tracked %d: want 1 to %d", be.Value, be.Max)
	case "max_ports":
		return fmt.Errorf("detect.max_ports_tracked %d: want 1 to %d", be.Value, be.Max)
	case "ticks":
		return fmt.Errorf("detect.window %s and detect.rtt_allowance %s in detect.tick %s: %d ticks of history, want at most %d",
			c.Window, c.RTTAllowance, c.Tick, be.Value, be.Max)
	}
	return fmt.Errorf("detect.max_sources_tracked %d and detect.max_ports_tracked %d over %d ticks: %d MiB of accounting, want at most %d MiB",
		c.MaxSourcesTracked, c.MaxPortsTracked, o.Ticks, be.Value>>20, be.Max>>20)
}
