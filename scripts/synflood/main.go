// Command synflood is the lab's compromised host: it sends TCP SYNs (or UDP
// datagrams with -udp) from a raw socket to random addresses inside the lab's
// benchmark range, 198.18.0.0/15 or with -6 2001:db8:ff::/48, and refuses any
// destination outside it. It is a test tool and never part of the shipped
// binary.
//
//	synflood [-6] [-udp | -icmp] [-ipopts] [-rate PPS] [-duration D] [-ports 80,443 | -ports random] [-dst PREFIX] [-src ADDR | -spoof PREFIX]
//
// -ipopts puts an option header in every packet, as some real uplinks carry:
// an IPv4 Router Alert option (RFC 2113, IHL 6) or an IPv6 Destination
// Options header (RFC 8200 §4.6, one PadN option) before TCP/UDP.
//
// It prints one line at the end: "sent=N seconds=S pps=R".
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egressguard/egressguard/scripts/internal/labaddr"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "synflood:", err)
		os.Exit(2)
	}
}

type config struct {
	v6, udp  bool
	icmp     bool
	anyPort  bool // a random destination port from 1024 up per packet
	ipOpts   bool
	rate     int
	duration time.Duration
	ports    []uint16
	dst      netip.Prefix
	src      netip.Addr
	spoof    netip.Prefix
	size     int
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("synflood", flag.ContinueOnError)
	fs.BoolVar(&c.v6, "6", false, "IPv6 (destinations in 2001:db8:ff::/48)")
	fs.BoolVar(&c.udp, "udp", false, "UDP datagrams instead of TCP SYNs")
	fs.BoolVar(&c.icmp, "icmp", false, "ICMP echo requests instead of TCP SYNs")
	fs.BoolVar(&c.ipOpts, "ipopts", false, "IPv4 Router Alert option / IPv6 Destination Options header in every packet")
	fs.IntVar(&c.rate, "rate", 0, "packets per second, 0 = as fast as possible")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "how long to send")
	ports := fs.String("ports", "80,443", "destination ports, comma separated, or random")
	dst := fs.String("dst", "", "destination prefix inside the lab range (default: the whole range)")
	src := fs.String("src", "", "source address (default: the route's)")
	spoof := fs.String("spoof", "", "random source address inside this prefix per packet")
	fs.IntVar(&c.size, "size", 64, "UDP payload bytes")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.rate < 0 || c.duration <= 0 || c.size < 0 || c.size > 1400 {
		return c, fmt.Errorf("-rate %d, -duration %s, -size %d: want rate ≥ 0, duration > 0, 0 ≤ size ≤ 1400", c.rate, c.duration, c.size)
	}
	if c.udp && c.icmp {
		return c, fmt.Errorf("-udp and -icmp: want one protocol")
	}
	c.anyPort = *ports == "random"
	for _, f := range strings.Split(*ports, ",") {
		if c.anyPort {
			break
		}
		p, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || p == 0 {
			return c, fmt.Errorf("-ports %q: want ports 1-65535 or random", *ports)
		}
		c.ports = append(c.ports, uint16(p))
	}
	c.dst = labaddr.Default(c.v6)
	if *dst != "" {
		p, err := netip.ParsePrefix(*dst)
		if err != nil {
			return c, fmt.Errorf("-dst %q: %w", *dst, err)
		}
		c.dst = p
	}
	var err error
	if c.dst, err = labaddr.Check(c.dst); err != nil {
		return c, fmt.Errorf("-dst: %w", err)
	}
	if c.dst.Addr().Is6() != c.v6 {
		return c, fmt.Errorf("-dst %s: family does not match -6=%v", c.dst, c.v6)
	}
	switch {
	case *spoof != "":
		if c.spoof, err = netip.ParsePrefix(*spoof); err != nil || c.spoof.Addr().Is6() != c.v6 {
			return c, fmt.Errorf("-spoof %q: want a prefix of the destination's family", *spoof)
		}
	case *src != "":
		if c.src, err = netip.ParseAddr(*src); err != nil || c.src.Is6() != c.v6 {
			return c, fmt.Errorf("-src %q: want an address of the destination's family", *src)
		}
	default:
		if c.src, err = routeSource(c.dst.Addr()); err != nil {
			return c, err
		}
	}
	return c, nil
}

// routeSource asks the kernel which source address it would use toward dst.
func routeSource(dst netip.Addr) (netip.Addr, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to %s: %w", dst, err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func run(args []string) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	family := unix.AF_INET
	if c.v6 {
		family = unix.AF_INET6
	}
	// IPPROTO_RAW implies IP_HDRINCL (IPv4) and a caller-built header (IPv6).
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	buf := make([]byte, 0, 1500)
	start := time.Now()
	deadline := start.Add(c.duration)
	var sent, failed uint64
	for i := uint64(0); ; i++ {
		// Check the clock every 64 packets; pace to the rate if one is set.
		if i%64 == 0 {
			now := time.Now()
			if now.After(deadline) {
				break
			}
			if c.rate > 0 {
				due := start.Add(time.Duration(float64(i) / float64(c.rate) * float64(time.Second)))
				if d := due.Sub(now); d > 0 {
					time.Sleep(d)
				}
			}
		}
		src := c.src
		if c.spoof.IsValid() {
			src = labaddr.Random(c.spoof, rng)
		}
		dst := labaddr.Random(c.dst, rng)
		var port uint16
		if c.anyPort {
			port = uint16(1024 + rng.IntN(64512))
		} else {
			port = c.ports[rng.IntN(len(c.ports))]
		}
		proto := protoTCP
		switch {
		case c.udp:
			proto = protoUDP
		case c.icmp:
			proto = protoICMP
		}
		buf = build(buf[:0], src, dst, uint16(1024+rng.IntN(64000)), port, rng.Uint32(), proto, c.size, c.ipOpts)
		if err := unix.Sendto(fd, buf, 0, sockaddr(dst)); err != nil {
			// ENOBUFS under full-speed sending: count and go on.
			failed++
			continue
		}
		sent++
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("sent=%d failed=%d seconds=%.3f pps=%.0f\n", sent, failed, secs, float64(sent)/secs)
	return nil
}

func sockaddr(a netip.Addr) unix.Sockaddr {
	if a.Is4() {
		return &unix.SockaddrInet4{Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Addr: a.As16()}
}

// What build puts after the IP header.
const (
	protoTCP = iota
	protoUDP
	protoICMP
)

// build appends an IPv4 or IPv6 header (with ipOpts: a Router Alert option,
// or a Destination Options header) and a TCP SYN (with an MSS option), a
// UDP datagram of size payload bytes, or an ICMP (ICMPv6) echo request of
// size payload bytes.
func build(b []byte, src, dst netip.Addr, sport, dport uint16, seq uint32, kind int, size int, ipOpts bool) []byte {
	var l4 []byte
	proto := uint8(unix.IPPROTO_TCP)
	udp := kind == protoUDP
	csumOff := 16
	switch kind {
	case protoUDP:
		proto, csumOff = unix.IPPROTO_UDP, 6
		l4 = make([]byte, 8+size)
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	case protoICMP:
		proto, csumOff = unix.IPPROTO_ICMP, 2
		l4 = make([]byte, 8+size)
		l4[0] = 8 // echo request
		if src.Is6() {
			proto, l4[0] = unix.IPPROTO_ICMPV6, 128
		}
		binary.BigEndian.PutUint16(l4[4:], sport) // identifier
		binary.BigEndian.PutUint16(l4[6:], uint16(seq))
	default:
		l4 = make([]byte, 24)
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		binary.BigEndian.PutUint32(l4[4:], seq)
		l4[12] = 6 << 4 // data offset: 24 bytes
		l4[13] = 0x02   // SYN
		binary.BigEndian.PutUint16(l4[14:], 64240)
		copy(l4[20:], []byte{2, 4, 0x05, 0xb4}) // MSS 1460
	}
	var ph []byte // ICMPv4 has no pseudo-header
	if proto != unix.IPPROTO_ICMP {
		ph = pseudoHeader(src, dst, proto, len(l4))
	}
	ck := checksum(ph, l4)
	if udp && ck == 0 {
		ck = 0xffff
	}
	binary.BigEndian.PutUint16(l4[csumOff:], ck)

	if src.Is4() {
		h := make([]byte, 20)
		h[0] = 0x45
		if ipOpts {
			h = append(h, 148, 4, 0, 0) // Router Alert, value 0
			h[0] = 0x46
		}
		binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(l4)))
		binary.BigEndian.PutUint16(h[6:], 0x4000) // DF
		h[8], h[9] = 64, proto
		s, d := src.As4(), dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		binary.BigEndian.PutUint16(h[10:], checksum(nil, h))
		return append(append(b, h...), l4...)
	}
	h := make([]byte, 40)
	h[0] = 0x60
	h[6], h[7] = proto, 64
	if ipOpts {
		h[6] = 60                                 // Destination Options
		h = append(h, proto, 0, 1, 4, 0, 0, 0, 0) // next header, length 8, PadN of 4
	}
	binary.BigEndian.PutUint16(h[4:], uint16(len(h)-40+len(l4)))
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(append(b, h...), l4...)
}

func pseudoHeader(src, dst netip.Addr, proto uint8, l4len int) []byte {
	ph := append(src.AsSlice(), dst.AsSlice()...)
	if src.Is4() {
		return append(ph, 0, proto, byte(l4len>>8), byte(l4len))
	}
	return append(ph, 0, 0, byte(l4len>>8), byte(l4len), 0, 0, 0, proto)
}

// checksum is the Internet checksum over a then b (a of even length).
func checksum(a, b []byte) uint16 {
	var sum uint32
	for _, s := range [][]byte{a, b} {
		for i := 0; i+1 < len(s); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(s[i:]))
		}
		if len(s)%2 == 1 {
			sum += uint32(s[len(s)-1]) << 8
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
