package lab

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
)

// Classes reads `tc -s class show dev IF` in namespace ns.
func (l *Lab) Classes(ctx context.Context, ns, dev string) (map[string]ClassStat, error) {
	out, err := l.Exec(ctx, ns, "tc", "-s", "class", "show", "dev", dev)
	if err != nil {
		return nil, err
	}
	return ParseClasses(out), nil
}

// Qdiscs returns `tc qdisc show dev IF` in namespace ns, as printed.
func (l *Lab) Qdiscs(ctx context.Context, ns, dev string) (string, error) {
	return l.Exec(ctx, ns, "tc", "qdisc", "show", "dev", dev)
}

// Layout reads the qdiscs, classes and filters of dev in namespace ns.
func (l *Lab) Layout(ctx context.Context, ns, dev string) (Layout, error) {
	var outs [3]string
	for i, what := range []string{"qdisc", "class", "filter"} {
		out, err := l.Exec(ctx, ns, "tc", what, "show", "dev", dev)
		if err != nil {
			return Layout{}, err
		}
		outs[i] = out
	}
	return ParseLayout(outs[0], outs[1], outs[2]), nil
}

// Truth counters, in the inet namespace's table "inet egl": what arrived
// from the node, counted by nftables, independent of egressguard.
const (
	// TruthSyn counts TCP SYNs (no ACK) to ports 80 and 443.
	TruthSyn = "syn"
	// TruthUDP counts UDP datagrams to ports 80 and 443.
	TruthUDP = "udp_in"
	// TruthSynAck counts the SYN-ACKs the inet side sends back.
	TruthSynAck = "synack"
	// TruthWeb counts all TCP and UDP to ports 80 and 443 (bytes: the
	// egress of the throttled ports as the far end saw it).
	TruthWeb = "web"
)

const truthRules = `
table inet egl {
	counter syn {}
	counter udp_in {}
	counter synack {}
	counter web {}
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		tcp dport { 80, 443 } tcp flags & (syn | ack) == syn counter name syn
		udp dport { 80, 443 } counter name udp_in
		meta l4proto { tcp, udp } th dport { 80, 443 } counter name web
	}
	chain out {
		type filter hook output priority -300; policy accept;
		tcp flags & (syn | ack) == syn | ack counter name synack
	}
}
`

// InstallTruth loads the truth counters into the inet namespace.
func (l *Lab) InstallTruth(ctx context.Context) error {
	f, err := os.CreateTemp("", "egl-truth-*.nft")
	if err != nil {
		return fmt.Errorf("lab: truth rules: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(truthRules); err != nil {
		f.Close()
		return fmt.Errorf("lab: truth rules: %w", err)
	}
	f.Close()
	_, err = l.Exec(ctx, l.Inet, "nft", "-f", f.Name())
	return err
}

var counterLine = regexp.MustCompile(`packets (\d+) bytes (\d+)`)

// Truth reads a truth counter (TruthSyn…) in packets and bytes.
func (l *Lab) Truth(ctx context.Context, name string) (packets, bytes uint64, err error) {
	out, err := l.Exec(ctx, l.Inet, "nft", "list", "counter", "inet", "egl", name)
	if err != nil {
		return 0, 0, err
	}
	m := counterLine.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("lab: counter %s: no packets/bytes in %q", name, out)
	}
	packets, _ = strconv.ParseUint(m[1], 10, 64)
	bytes, _ = strconv.ParseUint(m[2], 10, 64)
	return packets, bytes, nil
}
