package account

// Counters are the weighted packet counts of one key over some span of
// ticks. Out counts packets the key sent, In the replies addressed to it.
type Counters struct {
	SynOut, SynAckIn, RstOut, CloseOut uint64
	UDPOut, UDPIn                      uint64
	ICMPOut, ICMPIn                    uint64
	PacketsOut, BytesOut               uint64
	PacketsIn, BytesIn                 uint64
	// SpoofedOut counts packets out whose source address the key's bridge
	// port does not own (port keys only).
	SpoofedOut uint64
}

func (c *Counters) add(p Packet, k Kind, w uint64) {
	switch k {
	case KindSynOut:
		c.SynOut += w
	case KindSynAckIn:
		c.SynAckIn += w
	case KindRstOut:
		c.RstOut += w
	case KindCloseOut:
		c.CloseOut += w
	case KindUDPOut:
		c.UDPOut += w
	case KindUDPIn:
		c.UDPIn += w
	case KindICMPOut:
		c.ICMPOut += w
	case KindICMPIn:
		c.ICMPIn += w
	}
	if p.Out {
		c.PacketsOut += w
		c.BytesOut += w * uint64(p.Length)
		if p.Spoofed {
			c.SpoofedOut += w
		}
	} else {
		c.PacketsIn += w
		c.BytesIn += w * uint64(p.Length)
	}
}

// Add adds o to c.
func (c *Counters) Add(o Counters) {
	c.SynOut += o.SynOut
	c.SynAckIn += o.SynAckIn
	c.RstOut += o.RstOut
	c.CloseOut += o.CloseOut
	c.UDPOut += o.UDPOut
	c.UDPIn += o.UDPIn
	c.ICMPOut += o.ICMPOut
	c.ICMPIn += o.ICMPIn
	c.PacketsOut += o.PacketsOut
	c.BytesOut += o.BytesOut
	c.PacketsIn += o.PacketsIn
	c.BytesIn += o.BytesIn
	c.SpoofedOut += o.SpoofedOut
}
