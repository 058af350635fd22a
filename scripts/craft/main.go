// Command craft sends the packets a header-offset classifier gets wrong,
// for the shaper's kernel tests inside the lab's namespaces: TCP with IPv4
// options, UDP datagrams that the kernel fragments, IPv6 TCP with a
// Destination Options header, and 802.1Q-tagged frames. It is a test tool,
// never shipped.
//
//	craft sink -port 443                        accept TCP and discard what arrives
//	craft tcp-ipopts -dst 198.18.0.10 -port 443 -for 3s
//	craft udp-frag -dst 198.18.0.10 -port 443 -for 3s
//	craft tcp6-dstopts -dst 2001:db8:ff::10 -port 443 -for 3s
//	craft vlan -dev up0 -dst 198.18.0.10 -port 443 -for 3s
//
// Each sender prints the bytes it handed to the kernel.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egressguard/egressguard/scripts/internal/labaddr"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: craft sink|tcp-ipopts|udp-frag|tcp6-dstopts|vlan [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dst := fs.String("dst", "", "destination address")
	port := fs.Int("port", 443, "destination port")
	dur := fs.Duration("for", 3*time.Second, "how long to send")
	dev := fs.String("dev", "", "vlan: interface to write tagged frames to")
	size := fs.Int("size", 60000, "udp, icmp: payload bytes")
	_ = fs.Parse(os.Args[2:])
	if os.Args[1] != "sink" {
		a, err := netip.ParseAddr(*dst)
		if err == nil {
			_, err = labaddr.Check(netip.PrefixFrom(a, a.BitLen()))
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "craft: -dst %q: %v\n", *dst, err)
			os.Exit(2)
		}
	}
	var n int64
	var err error
	switch os.Args[1] {
	case "sink":
		err = sink(*port)
	case "tcp-ipopts":
		// NOP NOP NOP EOL: four bytes of options, IHL 6.
		n, err = tcp("tcp4", *dst, *port, *dur, func(fd int) error {
			return unix.SetsockoptString(fd, unix.IPPROTO_IP, unix.IP_OPTIONS, string([]byte{1, 1, 1, 0}))
		})
	case "tcp6-dstopts":
		// A Destination Options header of 8 bytes: next header and length
		// (filled by the kernel), then PadN of 4.
		n, err = tcp("tcp6", *dst, *port, *dur, func(fd int) error {
			return unix.SetsockoptString(fd, unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, string([]byte{0, 0, 1, 4, 0, 0, 0, 0}))
		})
	case "udp":
		n, err = udp(*dst, *port, *size, *dur)
	case "icmp":
		n, err = icmp(*dst, *size, *dur)
	case "vlan":
		n, err = vlan(*dev, *dst, *port, *dur)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "craft:", err)
		os.Exit(1)
	}
	fmt.Println(n)
}

func sink(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return err
	}
	fmt.Println("ready")
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
	}
}

func tcp(network, dst string, port int, dur time.Duration, opt func(fd int) error) (int64, error) {
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var oerr error
		if err := c.Control(func(fd uintptr) { oerr = opt(int(fd)) }); err != nil {
			return err
		}
		return oerr
	}}
	c, err := d.Dial(network, net.JoinHostPort(dst, fmt.Sprint(port)))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	var n int64
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		_ = c.SetWriteDeadline(end)
		w, err := c.Write(buf)
		n += int64(w)
		if err != nil {
			break // the deadline
		}
	}
	return n, nil
}

func udp(dst string, port, size int, dur time.Duration) (int64, error) {
	c, err := net.Dial("udp", net.JoinHostPort(dst, fmt.Sprint(port)))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, size)
	var n int64
	for end := time.Now().Add(dur); time.Now().Before(end); {
		w, err := c.Write(buf)
		if err != nil {
			continue // ENOBUFS while the queue is full
		}
		n += int64(w)
	}
	return n, nil
}

// icmp sends ICMP echo requests (ICMPv6 for an IPv6 destination) with
// size bytes of payload.
func icmp(dst string, size int, dur time.Duration) (int64, error) {
	network, typ := "ip4:icmp", byte(8)
	if strings.Contains(dst, ":") {
		network, typ = "ip6:ipv6-icmp", 128 // the kernel fills the ICMPv6 checksum
	}
	c, err := net.Dial(network, dst)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	msg := make([]byte, 8+size)
	msg[0] = typ
	if typ == 8 {
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	}
	var n int64
	for end := time.Now().Add(dur); time.Now().Before(end); {
		w, err := c.Write(msg)
		if err != nil {
			continue
		}
		n += int64(w)
	}
	return n, nil
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// vlan writes Ethernet frames with one 802.1Q tag (VLAN 100) carrying
// IPv4/UDP to port, through a packet socket so the tag stays in the frame.
func vlan(dev, dst string, port int, dur time.Duration) (int64, error) {
	ifc, err := net.InterfaceByName(dev)
	if err != nil {
		return 0, err
	}
	to, err := netip.ParseAddr(dst)
	if err != nil || !to.Is4() {
		return 0, fmt.Errorf("-dst %q: want an IPv4 address", dst)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	payload := 1400
	f := make([]byte, 0, 18+20+8+payload)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	f = append(f, ifc.HardwareAddr...)
	f = binary.BigEndian.AppendUint16(f, 0x8100)
	f = binary.BigEndian.AppendUint16(f, 100)
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 99, 1, 1}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+payload))
	ip = append(ip, to.AsSlice()...)
	f = append(f, ip...)
	f = binary.BigEndian.AppendUint16(f, 40000)
	f = binary.BigEndian.AppendUint16(f, uint16(port))
	f = binary.BigEndian.AppendUint16(f, uint16(8+payload))
	f = binary.BigEndian.AppendUint16(f, 0)
	f = append(f, make([]byte, payload)...)
	sa := &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	var n int64
	for end := time.Now().Add(dur); time.Now().Before(end); {
		if err := unix.Sendto(fd, f, 0, sa); err == nil {
			n += int64(len(f))
		}
	}
	return n, nil
}
