// Command sink runs in the lab's "internet" namespace, where the benchmark
// ranges are local routes, and accepts TCP connections on every local
// address of the given ports, closing each at once: the far end of every
// handshake the crawler completes. It is a test tool, never shipped.
//
//	sink [-ports 80,443]
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
)

func main() {
	ports := flag.String("ports", "80,443", "TCP ports to accept on, comma separated")
	flag.Parse()
	var ls []net.Listener
	for _, p := range strings.Split(*ports, ",") {
		// "tcp" on an unspecified address is dual-stack: IPv4 and IPv6.
		l, err := net.Listen("tcp", ":"+strings.TrimSpace(p))
		if err != nil {
			fmt.Fprintln(os.Stderr, "sink:", err)
			os.Exit(1)
		}
		ls = append(ls, l)
	}
	fmt.Println("ready")
	errs := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					errs <- err
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Fprintln(os.Stderr, "sink:", <-errs)
	os.Exit(1)
}
