// Package capgen generates synthetic captures for replay tests and
// benchmarks (scripts/gencap is its command line). It streams: any size
// costs no memory. Test support only; the shipped binary never imports it.
package capgen

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"time"
)

// Write writes a nanosecond pcap of n Ethernet frames whose timestamps
// advance at pps from 2026-01-01: a share of them SYNs from 10.0.0.1 (VLAN
// 100) to random addresses in 198.18.0.0/15 that nobody answers, the rest
// a crawler's healthy handshakes (SYN out, SYN-ACK in, FIN out). The same
// arguments always give the same bytes. With spread, destinations are
// drawn from 65,536 addresses spread over all of 1.0.0.0-223.255.255.255
// instead: the file is never sent, and tcpdump caches every address string
// it prints in a chained table of 4,096 buckets hashed on the first octets,
// so destinations all in 198.18.0.0/15, or millions of distinct ones, make
// its decode quadratic and a speed comparison with it meaningless; for the
// same reason (its table of acknowledged connections) the crawler then
// talks to 256 servers.
func Write(w io.Writer, n, pps int, share float64, spread bool) error {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b23c4d) // nanosecond pcap
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 262144)
	binary.LittleEndian.PutUint32(hdr[20:], 1) // Ethernet
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var pool []uint32
	if spread {
		pool = make([]uint32, 1<<16)
		for i := range pool {
			pool[i] = 0x01000000 + rng.Uint32N(0xdf000000)
		}
	}
	randomDst := func() uint32 {
		if spread {
			return pool[rng.IntN(len(pool))]
		}
		return 0xc6120000 | rng.Uint32N(1<<17)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	frame := make([]byte, 0, 128)
	rec := make([]byte, 16)
	step := 0 // position in the crawler's handshake: SYN, SYN-ACK, FIN
	var peer uint32
	for i := range n {
		ts := start + int64(i)*int64(time.Second)/int64(pps)
		var src, dst uint32
		var sport, dport uint16
		var flags byte
		if rng.Float64() < share {
			src, dst = 0x0a000001, randomDst()
			sport, dport, flags = uint16(1024+rng.IntN(60000)), []uint16{80, 443}[rng.IntN(2)], 0x02
		} else {
			if step == 0 {
				peer = randomDst()
				if spread {
					// tcpdump keeps a chained table of every TCP connection
					// it saw acknowledged: a crawler of 256 servers keeps it short.
					peer = pool[rng.IntN(256)]
				}
			}
			switch step {
			case 0:
				src, dst, sport, dport, flags = 0x0a000001, peer, 40000, 443, 0x02
			case 1:
				src, dst, sport, dport, flags = peer, 0x0a000001, 443, 40000, 0x12
			case 2:
				src, dst, sport, dport, flags = 0x0a000001, peer, 40000, 443, 0x11
			}
			step = (step + 1) % 3
		}
		frame = tcpFrame(frame[:0], src, dst, sport, dport, flags)
		binary.LittleEndian.PutUint32(rec[0:], uint32(ts/1e9))
		binary.LittleEndian.PutUint32(rec[4:], uint32(ts%1e9))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
		if _, err := w.Write(rec); err != nil {
			return err
		}
		if _, err := w.Write(frame); err != nil {
			return err
		}
	}
	return nil
}

// tcpFrame appends Ethernet, an 802.1Q tag (VLAN 100), IPv4 and a TCP header
// with an MSS option. Checksums are left zero: replay does not check them.
func tcpFrame(b []byte, src, dst uint32, sport, dport uint16, flags byte) []byte {
	b = append(b, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0, 0, 100, 8, 0)
	b = append(b, 0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0)
	b = binary.BigEndian.AppendUint32(b, src)
	b = binary.BigEndian.AppendUint32(b, dst)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = append(b, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, flags, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 5, 0xb4)
	return b
}
