package lab

import (
	"encoding/json"
	"fmt"
	"time"
)

// IperfResult is what an iperf3 client reported with -J.
type IperfResult struct {
	// Start is when the test started, by the client's clock.
	Start time.Time
	// ReceivedBps is what the receiver got, in bits/s: end.sum_received for
	// TCP, end.sum less the lost datagrams for UDP.
	ReceivedBps float64
	// SentBps is what the sender wrote, in bits/s.
	SentBps float64
	// Intervals are the sender's per-interval rates (-i, default 1 s).
	Intervals []IperfInterval
}

// IperfInterval is one reporting interval of the sender.
type IperfInterval struct {
	Start, End time.Duration // offsets from IperfResult.Start
	Bps        float64
}

// ParseIperf decodes iperf3's -J report; a report with an "error" field is
// an error.
func ParseIperf(b []byte) (IperfResult, error) {
	var doc struct {
		Error string `json:"error"`
		Start struct {
			Timestamp struct {
				Timesecs int64 `json:"timesecs"`
			} `json:"timestamp"`
		} `json:"start"`
		Intervals []struct {
			Sum struct {
				Start float64 `json:"start"`
				End   float64 `json:"end"`
				Bps   float64 `json:"bits_per_second"`
			} `json:"sum"`
		} `json:"intervals"`
		End struct {
			Sum *struct {
				Bps         float64 `json:"bits_per_second"`
				LostPercent float64 `json:"lost_percent"`
			} `json:"sum"`
			SumSent *struct {
				Bps float64 `json:"bits_per_second"`
			} `json:"sum_sent"`
			SumReceived *struct {
				Bps float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return IperfResult{}, fmt.Errorf("lab: iperf3 report: %w", err)
	}
	if doc.Error != "" {
		return IperfResult{}, fmt.Errorf("lab: iperf3: %s", doc.Error)
	}
	r := IperfResult{Start: time.Unix(doc.Start.Timestamp.Timesecs, 0)}
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	for _, iv := range doc.Intervals {
		r.Intervals = append(r.Intervals, IperfInterval{Start: sec(iv.Sum.Start), End: sec(iv.Sum.End), Bps: iv.Sum.Bps})
	}
	switch e := doc.End; {
	case e.SumReceived != nil:
		r.ReceivedBps = e.SumReceived.Bps
		if e.SumSent != nil {
			r.SentBps = e.SumSent.Bps
		}
	case e.Sum != nil: // UDP
		r.SentBps = e.Sum.Bps
		r.ReceivedBps = e.Sum.Bps * (1 - e.Sum.LostPercent/100)
	default:
		return IperfResult{}, fmt.Errorf("lab: iperf3 report has no end sums")
	}
	return r, nil
}
