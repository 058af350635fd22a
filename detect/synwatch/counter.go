package synwatch

import (
	"net/netip"
	"slices"
	"time"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/account"
	"github.com/egressguard/egressguard/detect/packet"
)

// Counter is the accounting the live capture and `egressguard replay`
// share: it classifies decoded packets, accumulates one interval's
// interface Counts, feeds the per-key accounting (detect/account) and
// judges every key with detect.KeyDetector at each Tick. Each packet is
// weighted by the 1-in-N sampling it was captured under. It is not safe
// for concurrent use.
type Counter struct {
	dec  *decoder
	win  *window
	topN int
	acc  *account.Accounting
	det  *detect.KeyDetector
	keys []detect.KeyVerdict // the latest judgement: keys not clean
	// spoofed, if set, says whether a VM port emitting src to dst breaks
	// what the port owns (the live capture's inventory).
	spoofed func(port string, src, dst netip.Addr) bool
	// replies, if set, joins source keys' replies across the node's
	// captures, this one named capture (detect.KeyReplies).
	replies *detect.KeyReplies
	capture string
}

// ShareReplies makes every key detector of c, now and after Reconfigure,
// match source keys' replies across the captures sharing j, this one being
// named capture.
func (c *Counter) ShareReplies(j *detect.KeyReplies, capture string) {
	c.replies, c.capture = j, capture
	c.det.ShareReplies(j, capture)
}

// NewCounter returns a Counter that counts UDP to or from ports on the
// interface, keeps topN destination ports and sources, and judges keys
// with cfg; seed drives its sample reservoir. Errors are cfg's validation
// errors.
func NewCounter(ports []uint16, topN int, seed uint64, cfg detect.Config) (*Counter, error) {
	if len(ports) == 0 {
		ports = DefaultPorts
	}
	if topN <= 0 {
		topN = DefaultTopN
	}
	c := &Counter{dec: newDecoder(ports), win: newWindow(seed), topN: topN}
	if err := c.Reconfigure(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// Reconfigure judges keys with cfg from the next packet on, with a fresh
// per-key accounting and key detector: every key's window and hysteresis
// start over (a config reload). The interface counts go on. On error (cfg's
// validation) the Counter is unchanged.
func (c *Counter) Reconfigure(cfg detect.Config) error {
	det, err := detect.NewKeyDetector(cfg)
	if err != nil {
		return err
	}
	acc, err := account.New(detect.AccountOptions(cfg))
	if err != nil {
		return err
	}
	if c.replies != nil {
		det.ShareReplies(c.replies, c.capture)
	}
	c.acc, c.det, c.keys = acc, det, nil
	return nil
}

// Add counts p, a packet decoded by packet.Decode, as sent by this host or
// one of its VMs (outgoing) or received. port is the VM bridge port the
// frame was seen on ("" for the uplink). every is the 1-in-N sampling it
// was taken under; filtered says it passed the capture's kernel filter, so
// that TCP segments without SYN, FIN or RST and IP other than TCP, UDP and
// ICMP stand for DataEvery times as many (FilterSpec). Add returns the
// weight p was counted with, 0 when it is no IP packet the accounting
// counts.
func (c *Counter) Add(p *packet.Packet, outgoing bool, port string, every uint32, filtered bool) uint64 {
	o, ok := c.dec.classify(p, outgoing)
	if !ok {
		return 0
	}
	return c.count(o, port, every, filtered)
}

// count is Add after classification: the one place a packet reaches the
// interface window and the per-key accounting.
func (c *Counter) count(o observation, port string, every uint32, filtered bool) uint64 {
	w := uint64(every)
	if filtered && o.dataRate {
		w *= DataEvery
	}
	if port == "" {
		c.win.add(o, w)
	} else {
		o.Port = port
		o.Spoofed = o.Out && c.spoofed != nil && c.spoofed(port, o.Src, o.Dst)
	}
	c.acc.Add(o.Packet, w)
	return w
}

// Tick closes one detect.tick of the per-key accounting at now and judges
// every key; it returns the keys that are not clean, floods first (also
// kept for Keys and Collect).
func (c *Counter) Tick(now time.Time, inv detect.Inventory) []detect.KeyVerdict {
	c.acc.Tick()
	c.keys = c.det.Judge(now, c.acc, inv)
	return c.keys
}

// Keys returns the latest judgement: the keys that are not clean, floods
// first.
func (c *Counter) Keys() []detect.KeyVerdict { return slices.Clone(c.keys) }

// Collect returns the interface counts since the previous Collect, with
// the latest per-key judgement, and starts a new window.
func (c *Counter) Collect() detect.Counts {
	counts := c.win.counts(c.topN)
	c.win.reset()
	counts.Keys = slices.Clone(c.keys)
	return counts
}
