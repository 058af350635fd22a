package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/capfile"
	"github.com/egressguard/egressguard/detect/replay"
)

func newReplayCommand(g *globals) *cobra.Command {
	var (
		locals       []string
		direction    string
		asJSON       bool
		failOnFlood  bool
		localsParsed []netip.Prefix
	)
	cmd := &cobra.Command{
		Use:   "replay [--local CIDR]... [--direction in|out|auto] [--json] [--fail-on-flood] FILE...",
		Short: "Run the detector over capture files (pcap, pcapng, gzip) at their own timestamps",
		Long: `Replay runs the agent's counting and detector over capture files and prints
every change of state (time from the first packet, key, state, reasons,
signature), then a summary per file. Keys are those the agent judges every
detect.tick: each source address, each VM bridge port, the interface
aggregate and the untracked rest; "node" is the verdict the agent acts on,
judged every detect.interval and at once when a key floods. Direction: a Linux cooked capture's
packet type or pcapng's packet flags, else --local (the node's and its VMs'
addresses), else the addresses of the config's interfaces; --direction out
reads every packet as the node's egress (for flood captures taken at the
victim). Exit 0; 1 with --fail-on-flood when a flood was found; 2 on bad input.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return badInput("%s: want at least one capture FILE", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, files []string) error {
			dir, err := replay.ParseDirection(direction)
			if err != nil {
				return badInput("--direction: %v", err)
			}
			for _, s := range locals {
				p, err := config.ParsePrefix(s)
				if err != nil {
					return badInput("--local: %v", err)
				}
				localsParsed = append(localsParsed, p)
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			o := replay.Options{Detect: cfg.DetectorConfig(), Interval: time.Duration(cfg.Detect.Interval),
				Ports: config.Ports(cfg.Throttle.Ports), Direction: dir, Local: localsParsed, LocalFrom: "--local"}
			if len(o.Local) == 0 && dir == replay.Auto && len(cfg.Interfaces) > 0 {
				o.LocalFrom = "config interfaces " + strings.Join(cfg.Interfaces, ", ")
				// A capture that records each packet's direction (an
				// evidence bundle, a cooked capture) needs no addresses:
				// an interface missing here is an error only for the
				// packets that would need it.
				o.Local, o.LocalErr = interfaceAddrs(cfg.Interfaces)
			}
			return replayFiles(g.stdout, files, o, asJSON, failOnFlood)
		},
	}
	cmd.Flags().StringArrayVar(&locals, "local", nil, "a CIDR of the node's or its VMs' addresses (repeatable): packets from it are egress")
	cmd.Flags().StringVar(&direction, "direction", string(replay.Auto), "in, out (every packet is the node's egress) or auto")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&failOnFlood, "fail-on-flood", false, "exit 1 when any file holds a flood")
	return cmd
}

// interfaceAddrs returns the addresses of the named interfaces on this host
// as single-address prefixes.
func interfaceAddrs(names []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, name := range names {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("config interfaces: %s: %v", name, err)
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("replay: addresses of %s: %w", name, err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
				}
			}
		}
	}
	return out, nil
}

// replayFiles replays each file in turn and prints its events and summary.
func replayFiles(w io.Writer, files []string, o replay.Options, asJSON, failOnFlood bool) error {
	var sums []replay.Summary
	var flooded []string
	for _, f := range files {
		r, err := capfile.Open(f)
		if err != nil {
			return badInput("replay: %v", err)
		}
		var onEvent func(replay.Event)
		if !asJSON {
			onEvent = func(e replay.Event) { printEvent(w, e) }
		}
		sum, err := replay.Run(r, o, onEvent)
		r.Close()
		if err != nil {
			return badInput("replay: %v", err)
		}
		if !asJSON {
			printSummary(w, sum)
		}
		sums = append(sums, sum)
		if len(sum.Flooded) > 0 {
			flooded = append(flooded, f)
		}
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Files []replay.Summary `json:"files"`
		}{sums}); err != nil {
			return err
		}
	}
	if failOnFlood && len(flooded) > 0 {
		return fmt.Errorf("replay: flood found in %s", strings.Join(flooded, ", "))
	}
	return nil
}

func printEvent(w io.Writer, e replay.Event) {
	fmt.Fprintf(w, "%s +%.3fs %s %s", e.File, e.Offset.Seconds(), e.Key, e.State)
	if len(e.Reasons) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(e.Reasons, "; "))
	}
	if s := e.Signature; s != nil {
		fmt.Fprintf(w, " | signature %s", formatSignature(s))
	}
	fmt.Fprintln(w)
}

func formatSignature(s *detect.Signature) string {
	var b strings.Builder
	if len(s.Protocols) == 0 {
		b.WriteString("-")
	}
	b.WriteString(strings.Join(s.Protocols, "+"))
	if len(s.DstPorts) > 0 {
		ports := make([]string, len(s.DstPorts))
		for i, p := range s.DstPorts {
			ports[i] = fmt.Sprint(p)
		}
		fmt.Fprintf(&b, " dst_ports %s", strings.Join(ports, ","))
	} else {
		b.WriteString(" dst_ports any")
	}
	fmt.Fprintf(&b, " avg %.0f B", s.AvgPacketBytes)
	if s.Spoofed {
		b.WriteString(" spoofed")
	}
	if len(s.Sources) > 0 {
		srcs := make([]string, len(s.Sources))
		for i, a := range s.Sources {
			srcs[i] = a.String()
		}
		fmt.Fprintf(&b, " sources %s", strings.Join(srcs, ","))
	}
	if len(s.Ports) > 0 {
		fmt.Fprintf(&b, " ports %s", strings.Join(s.Ports, ","))
	}
	return b.String()
}

func printSummary(w io.Writer, s replay.Summary) {
	fmt.Fprintf(w, "%s summary: %d packets (%d outgoing, %d without direction", s.File, s.Packets, s.Outgoing, s.NoDirection)
	if s.Weighted != uint64(s.Packets-s.NoDirection) {
		fmt.Fprintf(w, ", standing for %d", s.Weighted)
	}
	fmt.Fprintf(w, "), %.3fs, %d ticks, %d intervals; ", s.Duration.Seconds(), s.Ticks, s.Intervals)
	if len(s.Flooded) == 0 {
		fmt.Fprintln(w, "no flood")
		return
	}
	fmt.Fprintf(w, "flooded: %s; first flood verdict at +%.3fs\n", strings.Join(s.Flooded, ", "), s.FirstVerdict.Seconds())
}
