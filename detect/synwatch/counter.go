package synwatch

import (
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/packet"
)

// Counter is the accounting the live capture and `egressguard replay`
// share: it classifies decoded packets and accumulates one window's counts,
// each packet weighted by the 1-in-N sampling it was captured under. It is
// not safe for concurrent use.
type Counter struct {
	dec  *decoder
	win  *window
	topN int
}

// NewCounter returns a Counter that counts UDP to or from ports and keeps
// topN destination ports and sources; seed drives its sample reservoir.
func NewCounter(ports []uint16, topN int, seed uint64) *Counter {
	if len(ports) == 0 {
		ports = DefaultPorts
	}
	if topN <= 0 {
		topN = DefaultTopN
	}
	return &Counter{dec: newDecoder(ports), win: newWindow(seed), topN: topN}
}

// Add counts p, a packet decoded by packet.Decode, weight times as sent by
// this host (outgoing) or received; it reports whether p counted (a SYN
// out, a SYN-ACK in, a RST or close out, UDP on the counted ports).
func (c *Counter) Add(p *packet.Packet, outgoing bool, weight uint32) bool {
	o, ok := c.dec.classify(p, outgoing)
	if !ok || o.kind == kindNone {
		return false
	}
	c.win.add(o, uint64(weight))
	return true
}

// Collect returns the counts since the previous Collect and starts a new
// window.
func (c *Counter) Collect() detect.Counts {
	counts := c.win.counts(c.topN)
	c.win.reset()
	return counts
}
