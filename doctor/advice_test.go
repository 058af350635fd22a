package doctor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/egressguard/egressguard/internal/features"
	"github.com/egressguard/egressguard/shaper"
)

func TestCapabilities(t *testing.T) {
	for _, tc := range []struct {
		fixture string // testdata/status/NAME, a captured /proc/self/status
		want    Status
		detail  string
	}{
		{"root", StatusOK, "CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH held (CapEff 000001fffeffffff)"},
		{"unit", StatusOK, "CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH held (CapEff 0000000000083004)"},
		{"net-only", StatusWarn, "missing CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH: attribution cannot name processes of other users or with more capabilities"},
		{"netadmin-only", StatusFail, "missing CAP_NET_RAW (AF_PACKET capture)"},
		{"nobody", StatusFail, "missing CAP_NET_ADMIN (tc), CAP_NET_RAW (AF_PACKET capture)"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			status, err := os.ReadFile(filepath.Join("testdata", "status", tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			capEff, err := parseCapEff(string(status))
			if err != nil {
				t.Fatal(err)
			}
			c := capabilitiesCheck(capEff)
			if c.Status != tc.want || c.Detail != tc.detail {
				t.Errorf("got %s %q, want %s %q", c.Status, c.Detail, tc.want, tc.detail)
			}
			if (c.Status == StatusOK) != (c.Hint == "") {
				t.Errorf("hint %q with status %s", c.Hint, c.Status)
			}
		})
	}
}

func TestParseCapEffRejectsBadInput(t *testing.T) {
	for _, in := range []string{"", "Name:\tx\n", "CapEff:\tzz\n"} {
		if _, err := parseCapEff(in); err == nil {
			t.Errorf("parseCapEff(%q): no error", in)
		}
	}
}

func TestRequiredFeature(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Status
	}{
		{nil, StatusOK},
		{fmt.Errorf("features: qdisc htb: %w", features.ErrNotSupported), StatusFail},
		{fmt.Errorf("features: dial rtnetlink: %w", unix.EPERM), StatusWarn},
	} {
		c := requiredFeatureCheck("sch_htb", "no throttle can be installed", tc.err)
		if c.Status != tc.want {
			t.Errorf("%v: status %s, want %s (%s)", tc.err, c.Status, tc.want, c.Detail)
		}
	}
}

func TestLeafChecks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		f         shaper.Features
		err       error
		sfq, fq   Status
		sfqDetail string
	}{
		{"both", shaper.Features{SFQ: true, FQCodel: true}, nil, StatusOK, StatusOK,
			"present (probed): leaves are sfq perturb 10"},
		{"sfq only", shaper.Features{SFQ: true}, nil, StatusOK, StatusOK,
			"present (probed): leaves are sfq perturb 10"},
		{"fq_codel only", shaper.Features{FQCodel: true}, nil, StatusWarn, StatusOK,
			"missing: leaves fall back to fq_codel, which keeps per-flow fairness inside the throttled class"},
		{"neither (this kernel)", shaper.Features{}, nil, StatusWarn, StatusWarn,
			"missing: leaves fall back to fq_codel, else bfifo: per-flow fairness inside the throttled class is lost"},
		{"probe failed", shaper.Features{}, errors.New("operation not permitted"), StatusWarn, StatusWarn,
			"not probed: operation not permitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := leafChecks(tc.f, tc.err)
			if len(cs) != 2 || cs[0].Name != "sch_sfq" || cs[1].Name != "sch_fq_codel" {
				t.Fatalf("checks %+v, want sch_sfq then sch_fq_codel", cs)
			}
			if cs[0].Status != tc.sfq || cs[0].Detail != tc.sfqDetail || cs[1].Status != tc.fq {
				t.Errorf("got sfq %s %q, fq_codel %s; want sfq %s %q, fq_codel %s",
					cs[0].Status, cs[0].Detail, cs[1].Status, tc.sfq, tc.sfqDetail, tc.fq)
			}
		})
	}
}

func TestInterfaceCheck(t *testing.T) {
	for _, tc := range []struct {
		w    watched
		want Status
	}{
		{watched{Name: "eth0", Reason: "default route (ipv4)", RootKind: "mq"}, StatusOK},
		{watched{Name: "eth0", Reason: "default route (ipv4)", RootKind: "fq_codel"}, StatusOK},
		{watched{Name: "eth0", Reason: "default route (ipv4)"}, StatusOK},
		{watched{Name: "eth0", Reason: "configured", RootKind: "htb", RootHandle: uint32(shaper.RootHandle)}, StatusWarn},
		{watched{Name: "eth0", Reason: "configured", RootKind: "htb", RootHandle: 1 << 16}, StatusOK},
		{watched{Name: "eth0", Reason: "configured", RootKind: "cake"}, StatusOK},
		{watched{Name: "eth9", Reason: "configured", Err: errors.New("Link not found")}, StatusFail},
		{watched{Name: "lo", Reason: "configured", LocalOnly: "a loopback device: its traffic never leaves the node"}, StatusFail},
	} {
		c := interfaceCheck(tc.w)
		if c.Status != tc.want {
			t.Errorf("%+v: %s %q, want %s", tc.w, c.Status, c.Detail, tc.want)
		}
		if c.Name != "interface "+tc.w.Name {
			t.Errorf("name %q", c.Name)
		}
	}
}

func TestSysctlAdvice(t *testing.T) {
	type want struct {
		name   string
		status Status
		detail string
	}
	for _, tc := range []struct {
		fixture string // testdata/NAME holds sys/net/...
		want    []want
	}{
		{"proc-defaults", []want{
			{"sysctl net.ipv4.tcp_syncookies", StatusOK, "1: SYN cookies when the backlog overflows"},
			{"sysctl net.netfilter.nf_conntrack_tcp_timeout_syn_sent", StatusWarn, "120s: every unanswered outbound SYN of a flood holds a conntrack entry that long; the table fills and new connections of every tenant are dropped"},
			{"sysctl net.ipv4.tcp_max_syn_backlog", StatusWarn, "512: a small half-open backlog overflows under a SYN flood against this node"},
		}},
		{"proc-hardened", []want{
			{"sysctl net.ipv4.tcp_syncookies", StatusOK, "1: SYN cookies when the backlog overflows"},
			{"sysctl net.netfilter.nf_conntrack_tcp_timeout_syn_sent", StatusOK, "30s: unanswered SYNs leave the conntrack table quickly"},
			{"sysctl net.ipv4.tcp_max_syn_backlog", StatusOK, "4096"},
		}},
		{"proc-noconntrack", []want{
			{"sysctl net.ipv4.tcp_syncookies", StatusWarn, "0: no SYN cookies; a SYN flood against this node (or reflected back at it) fills the listen backlog"},
			{"sysctl net.netfilter.nf_conntrack_tcp_timeout_syn_sent", StatusOK, "absent: conntrack is not loaded, outbound SYNs hold no conntrack entries"},
			{"sysctl net.ipv4.tcp_max_syn_backlog", StatusWarn, "128: a small half-open backlog overflows under a SYN flood against this node"},
		}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			got := sysctlChecks(readSysctl(filepath.Join("testdata", tc.fixture)))
			if len(got) != len(tc.want) {
				t.Fatalf("%d checks, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Name != w.name || g.Status != w.status || g.Detail != w.detail {
					t.Errorf("check %d: got %s %s %q, want %s %s %q", i, g.Name, g.Status, g.Detail, w.name, w.status, w.detail)
				}
				if (g.Status == StatusWarn) != (g.Hint != "") {
					t.Errorf("%s: hint %q with status %s", g.Name, g.Hint, g.Status)
				}
			}
		})
	}
}

func TestSysctlAdviceOnOddValues(t *testing.T) {
	read := func(values map[string]string) func(string) (string, error) {
		return func(name string) (string, error) {
			v, ok := values[name]
			if !ok {
				return "", fmt.Errorf("read %s: %w", name, os.ErrNotExist)
			}
			return v, nil
		}
	}
	cs := sysctlChecks(read(map[string]string{
		"net.ipv4.tcp_syncookies":                         "2\n",
		"net.netfilter.nf_conntrack_tcp_timeout_syn_sent": "x\n",
	}))
	for i, want := range []Status{StatusWarn, StatusWarn, StatusWarn} {
		if cs[i].Status != want {
			t.Errorf("%s: %s %q, want %s", cs[i].Name, cs[i].Status, cs[i].Detail, want)
		}
	}
}
