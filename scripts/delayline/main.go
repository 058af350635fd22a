// Command delayline holds every packet of one netfilter queue for a fixed
// time before letting it go: the lab's slow network, since the kernels we
// test on may lack netem. Queue packets to it with, for example,
//
//	iptables -A OUTPUT -p tcp --tcp-flags SYN,ACK SYN,ACK -j NFQUEUE --queue-num 7 --queue-bypass
//
// inside a lab namespace, then run it there:
//
//	delayline -queue 7 -delay 300ms
//
// It prints "ready" once bound to the queue and, on SIGTERM or SIGINT,
// "delayed=N". It speaks nfnetlink_queue directly (NFQNL_MSG_CONFIG to bind
// and ask for metadata only, NFQNL_MSG_PACKET in, NFQNL_MSG_VERDICT out).
// Test tool, never shipped.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nfnetlink_queue constants (include/uapi/linux/netfilter/nfnetlink_queue.h).
const (
	subsysQueue   = 3
	msgPacket     = 0
	msgVerdict    = 1
	msgConfig     = 2
	attrCfgCmd    = 1
	attrCfgParams = 2
	attrCfgMaxLen = 3
	attrPacketHdr = 1
	attrVerdict   = 2
	cmdBind       = 1
	copyMeta      = 1
	nfAccept      = 1
)

func main() {
	queue := flag.Uint("queue", 7, "netfilter queue number")
	delay := flag.Duration("delay", 300*time.Millisecond, "how long each packet is held")
	flag.Parse()
	if *queue > 65535 || *delay < 0 {
		fmt.Fprintf(os.Stderr, "delayline: -queue %d -delay %s: want a queue 0-65535 and a delay ≥ 0\n", *queue, *delay)
		os.Exit(2)
	}
	if err := run(uint16(*queue), *delay); err != nil {
		fmt.Fprintln(os.Stderr, "delayline:", err)
		os.Exit(1)
	}
}

func header(queue uint16) []byte {
	h := make([]byte, 4) // struct nfgenmsg: family, version, res_id (big endian)
	h[0] = unix.AF_UNSPEC
	binary.BigEndian.PutUint16(h[2:], queue)
	return h
}

func attr(typ uint16, data []byte) []byte {
	l := 4 + len(data)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(b, uint16(l))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[4:], data)
	return b
}

func run(queue uint16, delay time.Duration) error {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return fmt.Errorf("dial netfilter: %w", err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(16 << 20)
	config := func(a []byte) error {
		_, err := c.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(subsysQueue<<8 | msgConfig), Flags: netlink.Request | netlink.Acknowledge},
			Data:   append(header(queue), a...),
		})
		return err
	}
	if err := config(attr(attrCfgCmd, []byte{cmdBind, 0, 0, 0})); err != nil {
		return fmt.Errorf("bind queue %d: %w", queue, err)
	}
	params := make([]byte, 5) // copy_range (be32), copy_mode
	params[4] = copyMeta
	maxLen := binary.BigEndian.AppendUint32(nil, 1<<16)
	if err := config(append(attr(attrCfgParams, params), attr(attrCfgMaxLen, maxLen)...)); err != nil {
		return fmt.Errorf("configure queue %d: %w", queue, err)
	}
	var delayed atomic.Uint64
	verdict := func(id uint32) {
		v := make([]byte, 8)
		binary.BigEndian.PutUint32(v, nfAccept)
		binary.BigEndian.PutUint32(v[4:], id)
		_, err := c.Send(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(subsysQueue<<8 | msgVerdict), Flags: netlink.Request},
			Data:   append(header(queue), attr(attrVerdict, v)...),
		})
		if err == nil {
			delayed.Add(1)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, 1)
	go func() {
		for {
			msgs, err := c.Receive()
			if err != nil {
				var op *netlink.OpError
				if errors.As(err, &op) && errors.Is(op.Err, unix.ENOBUFS) {
					continue // the kernel dropped some notifications; their packets bypass
				}
				errc <- err
				return
			}
			for _, m := range msgs {
				if m.Header.Type != netlink.HeaderType(subsysQueue<<8|msgPacket) || len(m.Data) < 4 {
					continue
				}
				ad, err := netlink.NewAttributeDecoder(m.Data[4:])
				if err != nil {
					continue
				}
				for ad.Next() {
					if ad.Type() == attrPacketHdr && len(ad.Bytes()) >= 4 {
						id := binary.BigEndian.Uint32(ad.Bytes())
						time.AfterFunc(delay, func() { verdict(id) })
					}
				}
			}
		}
	}()
	fmt.Println("ready")
	select {
	case <-sig:
	case err := <-errc:
		return fmt.Errorf("receive: %w", err)
	}
	time.Sleep(delay) // let the held packets go
	fmt.Printf("delayed=%d\n", delayed.Load())
	return nil
}
