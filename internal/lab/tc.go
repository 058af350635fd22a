package lab

import (
	"regexp"
	"strconv"
	"strings"
)

// ClassStat is one class of `tc -s class show`.
type ClassStat struct {
	Kind, ID, Parent                  string // "htb", "e9:10", "e9:1"
	Bytes, Packets, Drops, Overlimits uint64 // the "Sent" line
}

var (
	classLine = regexp.MustCompile(`^class (\S+) (\S+) (?:parent (\S+)|root)`)
	sentLine  = regexp.MustCompile(`^\s*Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)`)
)

// ParseClasses parses the output of `tc -s class show dev IF`, keyed by
// class id.
func ParseClasses(out string) map[string]ClassStat {
	res := map[string]ClassStat{}
	var cur *ClassStat
	for _, line := range strings.Split(out, "\n") {
		if m := classLine.FindStringSubmatch(line); m != nil {
			if cur != nil {
				res[cur.ID] = *cur
			}
			cur = &ClassStat{Kind: m[1], ID: m[2], Parent: m[3]}
			continue
		}
		if m := sentLine.FindStringSubmatch(line); m != nil && cur != nil {
			cur.Bytes, _ = strconv.ParseUint(m[1], 10, 64)
			cur.Packets, _ = strconv.ParseUint(m[2], 10, 64)
			cur.Drops, _ = strconv.ParseUint(m[3], 10, 64)
			cur.Overlimits, _ = strconv.ParseUint(m[4], 10, 64)
		}
	}
	if cur != nil {
		res[cur.ID] = *cur
	}
	return res
}

// Layout counts what `tc qdisc/class/filter show` print for an interface,
// to compare an installed layout with a plan's tc commands.
type Layout struct {
	Root    string // the root qdisc's kind and handle, e.g. "htb e9:" or "noqueue 0:"
	Qdiscs  int    // qdiscs (root included)
	Classes int
	Filters int // filter entries that classify (lines with a flowid)
}

// ParseLayout reads the three outputs of `tc qdisc show`, `tc class show`
// and `tc filter show` for one interface.
func ParseLayout(qdiscs, classes, filters string) Layout {
	var l Layout
	for _, line := range strings.Split(qdiscs, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "qdisc" {
			continue
		}
		l.Qdiscs++
		if strings.Contains(line, " root ") || strings.HasSuffix(strings.TrimSpace(line), " root") {
			l.Root = f[1] + " " + f[2]
		}
	}
	for _, line := range strings.Split(classes, "\n") {
		if strings.HasPrefix(line, "class ") {
			l.Classes++
		}
	}
	for _, line := range strings.Split(filters, "\n") {
		if strings.Contains(line, "flowid ") || strings.Contains(line, "classid ") {
			l.Filters++
		}
	}
	return l
}

// PlanLayout counts the objects a plan's rendered tc commands (`egressguard
// plan`) install: what ParseLayout must find for a complete layout.
func PlanLayout(render string) Layout {
	var l Layout
	for _, line := range strings.Split(render, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "tc" || (f[2] != "add" && f[2] != "replace") {
			continue
		}
		switch f[1] {
		case "qdisc":
			l.Qdiscs++
			if i := indexOf(f, "root"); i >= 0 {
				if h := indexOf(f, "handle"); h >= 0 && h+2 < len(f) {
					l.Root = f[h+2] + " " + f[h+1]
				}
			}
		case "class":
			l.Classes++
		case "filter":
			l.Filters++
		}
	}
	return l
}

func indexOf(f []string, s string) int {
	for i, x := range f {
		if x == s {
			return i
		}
	}
	return -1
}
