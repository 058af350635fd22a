// Command gencap writes a synthetic capture for replay tests and benchmarks:
// a node (10.0.0.1, behind one 802.1Q tag) whose SYNs to random addresses in
// the lab's benchmark range 198.18.0.0/15 go unanswered, mixed with healthy
// handshakes (SYN out, SYN-ACK in, FIN out) of a crawler on the same node.
// It streams, so any size costs no memory. It is a test tool and never part
// of the shipped binary.
//
//	gencap [-packets N] [-pps R] [-flood-share F] [-spread] [-o FILE]
//
// Every frame is 60-70 bytes, timestamps advance at -pps from 2026-01-01.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/egressguard/egressguard/internal/capgen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gencap:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gencap", flag.ContinueOnError)
	packets := fs.Int("packets", 1_000_000, "packets to write")
	pps := fs.Int("pps", 100_000, "packets per second of capture time")
	share := fs.Float64("flood-share", 0.8, "share of packets that are unanswered SYNs")
	out := fs.String("o", "-", "output file (- = stdout)")
	spread := fs.Bool("spread", false, "destinations from 65,536 addresses over all of 1.0.0.0-223.255.255.255, not 198.18.0.0/15 (fair to tcpdump's address cache)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *packets < 0 || *pps <= 0 || *share < 0 || *share > 1 {
		return fmt.Errorf("-packets %d, -pps %d, -flood-share %g: want packets ≥ 0, pps > 0, 0 ≤ share ≤ 1", *packets, *pps, *share)
	}
	var w io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := capgen.Write(bw, *packets, *pps, *share, *spread); err != nil {
		return err
	}
	return bw.Flush()
}
