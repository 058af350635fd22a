package detect

import "net/netip"

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
