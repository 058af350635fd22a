package doctor

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/egressguard/egressguard/internal/features"
	"github.com/egressguard/egressguard/shaper"
)

// Capability bits (linux/capability.h) the agent needs: tc and capture
// need the network two; attribution needs the /proc two.
const (
	capDacReadSearch = 2
	capNetAdmin      = 12
	capNetRaw        = 13
	capSysPtrace     = 19
)

// grantHint is how an operator gives the agent what it lacks.
const grantHint = "run as root; the packaged unit and the DaemonSet grant exactly CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH"

// parseCapEff returns the effective capability set from the text of
// /proc/PID/status.
func parseCapEff(status string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		value, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("doctor: CapEff %q: %w", strings.TrimSpace(value), err)
		}
		return caps, nil
	}
	return 0, errors.New("doctor: no CapEff line in the process status")
}

// capabilitiesCheck says whether the effective set holds what tc and
// AF_PACKET need.
func capabilitiesCheck(capEff uint64) Check {
	c := Check{Name: "capabilities"}
	var missing []string
	if capEff&(1<<capNetAdmin) == 0 {
		missing = append(missing, "CAP_NET_ADMIN (tc)")
	}
	if capEff&(1<<capNetRaw) == 0 {
		missing = append(missing, "CAP_NET_RAW (AF_PACKET capture)")
	}
	if len(missing) > 0 {
		c.Status = StatusFail
		c.Detail = "missing " + strings.Join(missing, ", ")
		c.Hint = grantHint
		return c
	}
	var blind []string
	if capEff&(1<<capSysPtrace) == 0 {
		blind = append(blind, "CAP_SYS_PTRACE")
	}
	if capEff&(1<<capDacReadSearch) == 0 {
		blind = append(blind, "CAP_DAC_READ_SEARCH")
	}
	if len(blind) > 0 {
		c.Status = StatusWarn
		c.Detail = "missing " + strings.Join(blind, ", ") + ": attribution cannot name processes of other users or with more capabilities"
		c.Hint = grantHint
		return c
	}
	c.Status, c.Detail = StatusOK, fmt.Sprintf("CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH held (CapEff %016x)", capEff)
	return c
}

// requiredFeatureCheck reports a feature every mitigation needs (sch_htb,
// cls_bpf, act_mirred, ifb, AF_PACKET) from its probe (internal/features): present is ok,
// absent fails, an inconclusive probe warns.
func requiredFeatureCheck(name, use string, err error) Check {
	c := Check{Name: name}
	switch {
	case err == nil:
		c.Status, c.Detail = StatusOK, "present (probed)"
	case errors.Is(err, features.ErrNotSupported):
		c.Status = StatusFail
		c.Detail = fmt.Sprintf("missing from this kernel: %s (%v)", use, err)
		c.Hint = "use a kernel built with it (CONFIG_" + kconfig[name] + "), or load the module: modprobe " + name
	default:
		c.Status = StatusWarn
		c.Detail = fmt.Sprintf("not probed: %v", err)
		c.Hint = "run `egressguard doctor` with CAP_NET_ADMIN and CAP_NET_RAW on the node itself"
	}
	return c
}

// kconfig names the kernel option behind each probed feature.
var kconfig = map[string]string{
	"sch_htb":      "NET_SCH_HTB",
	"cls_bpf":      "NET_CLS_BPF",
	"act_mirred":   "NET_ACT_MIRRED",
	"ifb":          "IFB",
	"af_packet":    "PACKET",
	"sch_sfq":      "NET_SCH_SFQ",
	"sch_fq_codel": "NET_SCH_FQ_CODEL",
}

// leafChecks reports the optional leaf qdiscs from the shaper's probe: the
// plan prefers sfq, then fq_codel, then bfifo.
func leafChecks(f shaper.Features, err error) []Check {
	sfq := Check{Name: "sch_sfq"}
	fq := Check{Name: "sch_fq_codel"}
	if err != nil {
		for _, c := range []*Check{&sfq, &fq} {
			c.Status = StatusWarn
			c.Detail = fmt.Sprintf("not probed: %v", err)
			c.Hint = "run `egressguard doctor` as root on the node itself"
		}
		return []Check{sfq, fq}
	}
	switch {
	case f.SFQ:
		sfq.Status, sfq.Detail = StatusOK, "present (probed): leaves are sfq perturb 10"
	case f.FQCodel:
		sfq.Status = StatusWarn
		sfq.Detail = "missing: leaves fall back to fq_codel, which keeps per-flow fairness inside the throttled class"
		sfq.Hint = "load it for the designed layout: modprobe sch_sfq (CONFIG_NET_SCH_SFQ)"
	default:
		sfq.Status = StatusWarn
		sfq.Detail = "missing: leaves fall back to fq_codel, else bfifo: per-flow fairness inside the throttled class is lost"
		sfq.Hint = "modprobe sch_sfq (CONFIG_NET_SCH_SFQ); one flooding flow can then starve the other throttled flows"
	}
	switch {
	case f.FQCodel:
		fq.Status, fq.Detail = StatusOK, "present (probed)"
	case f.SFQ:
		fq.Status, fq.Detail = StatusOK, "missing, not needed: sfq is used"
	default:
		fq.Status = StatusWarn
		fq.Detail = "missing: with sch_sfq missing too, leaves are bfifo sized to 100 ms at the class rate"
		fq.Hint = "modprobe sch_fq_codel (CONFIG_NET_SCH_FQ_CODEL)"
	}
	return []Check{sfq, fq}
}

// watched is an interface the agent would watch and how it was chosen.
type watched struct {
	Name   string
	Reason string // "default route (ipv4)", "configured"
	// RootKind and RootHandle describe its root qdisc; RootKind is empty
	// when the interface has none (or does not exist: see Err).
	RootKind   string
	RootHandle uint32
	// LocalOnly says why the interface carries no traffic that leaves the
	// node (netif.LocalOnly); the agent refuses to watch or throttle it.
	LocalOnly string
	Err       error
}

// interfaceCheck reports one interface and what a throttle would do to its
// root qdisc.
func interfaceCheck(w watched) Check {
	c := Check{Name: "interface " + w.Name}
	if w.Err != nil {
		c.Status = StatusFail
		c.Detail = fmt.Sprintf("%s, but: %v", w.Reason, w.Err)
		c.Hint = "fix `interfaces` in the config file (--config), or leave it empty to watch the default-route interfaces"
		return c
	}
	if w.LocalOnly != "" {
		c.Status = StatusFail
		c.Detail = fmt.Sprintf("%s, but it is %s; the agent refuses to watch or throttle it", w.Reason, w.LocalOnly)
		c.Hint = "list the uplinks in `interfaces` in the config file (--config), or leave it empty to watch the default-route interfaces"
		return c
	}
	root := fmt.Sprintf("root qdisc %s %s", w.RootKind, handleString(w.RootHandle))
	switch {
	case w.RootKind == "htb" && w.RootHandle == uint32(shaper.RootHandle):
		c.Status = StatusWarn
		c.Detail = fmt.Sprintf("%s; %s is the root-HTB throttle of an earlier release", w.Reason, root)
		c.Hint = "the agent converts it on its next throttle; `egressguard unthrottle` releases it and restores the root it replaced"
	default:
		if w.RootKind == "" {
			root = "no root qdisc (noqueue)"
		}
		c.Status = StatusOK
		c.Detail = fmt.Sprintf("%s; %s is left as it is: a throttle classifies on clsact and shapes on its own ifb device", w.Reason, root)
	}
	return c
}

// noInterfacesCheck is reported when nothing would be watched.
func noInterfacesCheck() Check {
	return Check{
		Name:   "interfaces",
		Status: StatusWarn,
		Detail: "no interface holds a default route and none is configured: the agent watches nothing",
		Hint:   "set `interfaces` in the config file (--config)",
	}
}

// handleString formats a qdisc handle as tc prints it ("e9:", "8001:").
func handleString(h uint32) string {
	return fmt.Sprintf("%x:", h>>16)
}

// Sysctls read for the SYN advice, by their dotted names.
const (
	sysctlSyncookies  = "net.ipv4.tcp_syncookies"
	sysctlSynSent     = "net.netfilter.nf_conntrack_tcp_timeout_syn_sent"
	sysctlSynBacklog  = "net.ipv4.tcp_max_syn_backlog"
	synSentAdviceMax  = 60   // seconds an unanswered SYN may hold a conntrack entry
	synBacklogMinimum = 1024 // below this a SYN flood against the node fills the backlog
)

// sysctlChecks gives advice on the SYN-related sysctls. read returns a
// sysctl's value by dotted name, or an error wrapping fs.ErrNotExist when
// the kernel does not have it.
func sysctlChecks(read func(name string) (string, error)) []Check {
	return []Check{
		syncookiesCheck(read),
		synSentCheck(read),
		synBacklogCheck(read),
	}
}

// sysctlInt parses what reading one integer sysctl returned; the check it
// returns is non-nil when reading or parsing failed.
func sysctlInt(name, text string, err error) (int, *Check) {
	if err != nil {
		return 0, &Check{Name: "sysctl " + name, Status: StatusWarn, Detail: fmt.Sprintf("not read: %v", err)}
	}
	v, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil {
		return 0, &Check{Name: "sysctl " + name, Status: StatusWarn, Detail: fmt.Sprintf("value %q is not an integer", strings.TrimSpace(text))}
	}
	return v, nil
}

func syncookiesCheck(read func(string) (string, error)) Check {
	text, err := read(sysctlSyncookies)
	v, bad := sysctlInt(sysctlSyncookies, text, err)
	if bad != nil {
		return *bad
	}
	c := Check{Name: "sysctl " + sysctlSyncookies}
	switch v {
	case 1:
		c.Status, c.Detail = StatusOK, "1: SYN cookies when the backlog overflows"
	case 2:
		c.Status = StatusWarn
		c.Detail = "2: SYN cookies for every SYN, which drops TCP options (window scaling, SACK) on all connections"
		c.Hint = "sysctl -w " + sysctlSyncookies + "=1"
	default:
		c.Status = StatusWarn
		c.Detail = fmt.Sprintf("%d: no SYN cookies; a SYN flood against this node (or reflected back at it) fills the listen backlog", v)
		c.Hint = "sysctl -w " + sysctlSyncookies + "=1"
	}
	return c
}

func synSentCheck(read func(string) (string, error)) Check {
	name := "sysctl " + sysctlSynSent
	text, err := read(sysctlSynSent)
	if errors.Is(err, fs.ErrNotExist) {
		return Check{Name: name, Status: StatusOK, Detail: "absent: conntrack is not loaded, outbound SYNs hold no conntrack entries"}
	}
	v, bad := sysctlInt(sysctlSynSent, text, err)
	if bad != nil {
		return *bad
	}
	if v > synSentAdviceMax {
		return Check{
			Name:   name,
			Status: StatusWarn,
			Detail: fmt.Sprintf("%ds: every unanswered outbound SYN of a flood holds a conntrack entry that long; the table fills and new connections of every tenant are dropped", v),
			Hint:   fmt.Sprintf("sysctl -w %s=30", sysctlSynSent),
		}
	}
	return Check{Name: name, Status: StatusOK, Detail: fmt.Sprintf("%ds: unanswered SYNs leave the conntrack table quickly", v)}
}

func synBacklogCheck(read func(string) (string, error)) Check {
	text, err := read(sysctlSynBacklog)
	v, bad := sysctlInt(sysctlSynBacklog, text, err)
	if bad != nil {
		return *bad
	}
	if v < synBacklogMinimum {
		return Check{
			Name:   "sysctl " + sysctlSynBacklog,
			Status: StatusWarn,
			Detail: fmt.Sprintf("%d: a small half-open backlog overflows under a SYN flood against this node", v),
			Hint:   fmt.Sprintf("sysctl -w %s=%d", sysctlSynBacklog, 4096),
		}
	}
	return Check{Name: "sysctl " + sysctlSynBacklog, Status: StatusOK, Detail: strconv.Itoa(v)}
}
