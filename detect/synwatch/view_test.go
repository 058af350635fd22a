package synwatch

import (
	"fmt"

	"github.com/egressguard/egressguard/detect"
)

// countsView prints Counts compactly in test logs.
type countsView detect.Counts

func (c countsView) brief() string {
	return fmt.Sprintf("syn_out=%d synack_in=%d rst_out=%d udp_out=%d udp_in=%d dsts=%d ports=%v sources=%d macs=%d samples=%v",
		c.SynOut, c.SynAckIn, c.RstOut, c.UDPOut, c.UDPIn, c.Destinations, c.DstPorts, len(c.Sources), len(c.SourceMACs), c.SampleDsts)
}
