package detect

import (
	"maps"
	"math"
	"net/netip"
	"sync"

	"github.com/egressguard/egressguard/detect/account"
)

// MatchReplies credits SYN-ACKs to the interface their SYNs left by, across
// every watched interface of the node: with asymmetric routing (two
// uplinks, SYNs out of one, SYN-ACKs back on the other) a healthy crawler's
// handshakes otherwise look failed on the first and unasked-for on the
// second. counts maps interface names to the interval's counts; each
// SynAckIn is replaced by
//
//	Σ_S  ACK(S) × syn_i(S) / SYN(S)   +   (SynAckIn_i − Σ_S ack_i(S))
//
// where, for each local source S, ack_i(S) are the SYN-ACKs to S seen on
// interface i (Counts.SynAckTo), ACK(S) their sum over the node, syn_i(S)
// what S sent on i (Counts.Sources) and SYN(S) its sum: each source's
// replies are shared between the interfaces its SYNs left by, in
// proportion; replies to sources that sent nothing seen here, and those
// the capped maps did not key, stay where they arrived. With one interface
// nothing changes.
func MatchReplies(counts map[string]*Counts) {
	if len(counts) < 2 {
		return
	}
	ack := map[netip.Addr]uint64{}
	syn := map[netip.Addr]uint64{}
	for _, c := range counts {
		for a, n := range c.SynAckTo {
			ack[a] += n
		}
		for a, n := range c.Sources {
			syn[a] += n
		}
	}
	credit := make(map[string]float64, len(counts))
	for name, c := range counts {
		var keyed uint64
		for a, n := range c.SynAckTo {
			if syn[a] > 0 {
				keyed += n
			}
		}
		credit[name] = float64(c.SynAckIn - min(keyed, c.SynAckIn))
		for a, n := range c.Sources {
			if ack[a] > 0 {
				credit[name] += float64(ack[a]) * float64(n) / float64(syn[a])
			}
		}
	}
	for name, c := range counts {
		c.SynAckIn = uint64(credit[name] + 0.5)
	}
}

// KeyReplies joins, per source address, what each capture of the node sent
// and the replies it saw, so the per-key rule (§11.3) matches replies
// node-wide the way MatchReplies does for the interface aggregate. With
// asymmetric routing a source's SYNs leave by one uplink and its SYN-ACKs
// come back by another; judged per capture, the source key on the first
// sees handshakes fail and is throttled although the node is healthy.
//
// Each capture's KeyDetector publishes its source keys' sends (the lagged
// span) and replies (the recent span) at every Judge and reads the sums
// over every capture's latest publication, at most one tick old. Port keys
// and the other-sources key stay per capture. It is safe for concurrent
// use by the captures' detectors.
type KeyReplies struct {
	mu   sync.Mutex
	caps map[string]map[netip.Addr]replyTally
}

// replyTally is one source's packets out and replies in, by protocol.
type replyTally struct{ sent, replies [protoCount]uint64 }

// Protocols whose replies are joined: TCP (SYN out, SYN-ACK in), UDP and ICMP.
const (
	protoTCP = iota
	protoUDP
	protoICMP
	protoCount
)

func tallyOf(sent, replies account.Counters) replyTally {
	return replyTally{
		sent:    [protoCount]uint64{sent.SynOut, sent.UDPOut, sent.ICMPOut},
		replies: [protoCount]uint64{replies.SynAckIn, replies.UDPIn, replies.ICMPIn},
	}
}

// NewKeyReplies returns an empty join, one per node.
func NewKeyReplies() *KeyReplies {
	return &KeyReplies{caps: map[string]map[netip.Addr]replyTally{}}
}

// Forget drops what capture published, when it stops.
func (j *KeyReplies) Forget(capture string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.caps, capture)
}

// publish replaces capture's tallies with own (which it keeps) and fills
// total with the node-wide sums for every address in own.
func (j *KeyReplies) publish(capture string, own, total map[netip.Addr]replyTally) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.caps[capture] = maps.Clone(own)
	clear(total)
	for a := range own {
		var t replyTally
		for _, c := range j.caps {
			x, ok := c[a]
			if !ok {
				continue
			}
			for p := range protoCount {
				t.sent[p] += x.sent[p]
				t.replies[p] += x.replies[p]
			}
		}
		total[a] = t
	}
}

// credited returns the replies a source key on one capture is credited
// with, by protocol: the node-wide replies to the source shared between
// the captures it sent by, in proportion to what it sent by each,
//
//	replies(S) × sent_i(S) / sent(S)
//
// and its own replies where the source sent nothing anywhere.
func credited(own, total replyTally) [protoCount]uint64 {
	var out [protoCount]uint64
	for p := range protoCount {
		if total.sent[p] == 0 {
			out[p] = own.replies[p]
			continue
		}
		out[p] = uint64(math.Round(float64(total.replies[p]) * float64(own.sent[p]) / float64(total.sent[p])))
	}
	return out
}

// setReplies writes replies into c's reply counters.
func setReplies(c *account.Counters, r [protoCount]uint64) {
	c.SynAckIn, c.UDPIn, c.ICMPIn = r[protoTCP], r[protoUDP], r[protoICMP]
}
