package doctor

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/egressguard/egressguard/shaper"

	eglab "github.com/egressguard/egressguard/internal/lab"
)

// oracle asks iproute2, in a namespace of its own, whether the kernel takes
// each qdisc and filter the doctor reports on.
type oracle struct{ htb, bpf, mirred, ifb, sfq, fqCodel bool }

func askOracle(t *testing.T) oracle {
	t.Helper()
	ns := eglab.NewNetNS(t, "egp-doctor")
	tc := func(args ...string) bool {
		return exec.Command("tc", append([]string{"-n", ns}, args...)...).Run() == nil
	}
	var o oracle
	o.htb = tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb") &&
		tc("class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb", "rate", "1mbit")
	o.bpf = tc("qdisc", "add", "dev", "lo", "clsact") &&
		tc("filter", "add", "dev", "lo", "egress", "prio", "1", "protocol", "all", "bpf", "bytecode", "1,6 0 0 4294967295,")
	o.mirred = tc("actions", "add", "action", "mirred", "egress", "redirect", "dev", "lo")
	o.ifb = exec.Command("ip", "-n", ns, "link", "add", "egp-ifb", "type", "ifb").Run() == nil
	o.sfq = o.htb && tc("qdisc", "add", "dev", "lo", "parent", "1:1", "handle", "10:", "sfq", "perturb", "10")
	if o.sfq {
		tc("qdisc", "del", "dev", "lo", "parent", "1:1", "handle", "10:")
	}
	o.fqCodel = o.htb && tc("qdisc", "add", "dev", "lo", "parent", "1:1", "handle", "10:", "fq_codel")
	return o
}

func TestRunOnThisKernel(t *testing.T) {
	eglab.SkipUnlessRoot(t)
	want := askOracle(t)
	t.Logf("iproute2 says: %+v", want)
	nsBefore, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}

	r := Run(context.Background(), Options{Interfaces: []string{"lo"}, Probe: shaper.Probe})
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", text.String())

	status := map[string]Status{}
	for _, c := range r.Checks {
		status[c.Name] = c.Status
	}
	expect := func(name string, ok bool, otherwise Status) {
		t.Helper()
		w := StatusOK
		if !ok {
			w = otherwise
		}
		if status[name] != w {
			t.Errorf("%s: %s, want %s (iproute2: present=%v)", name, status[name], w, ok)
		}
	}
	expect("capabilities", true, StatusFail)
	expect("af_packet", true, StatusFail)
	expect("sch_htb", want.htb, StatusFail)
	expect("cls_bpf", want.bpf, StatusFail)
	expect("act_mirred", want.mirred, StatusFail)
	expect("ifb", want.ifb, StatusFail)
	expect("sch_sfq", want.sfq, StatusWarn)
	expect("sch_fq_codel", want.fqCodel || want.sfq, StatusWarn)
	// Watching the loopback is refused: nothing on it leaves the node.
	expect("interface lo", false, StatusFail)
	if !r.Failed() {
		t.Error("Failed() = false with the loopback configured as the watched interface")
	}

	if nsAfter, _ := os.Readlink("/proc/self/ns/net"); nsAfter != nsBefore {
		t.Errorf("the process moved from network namespace %s to %s", nsBefore, nsAfter)
	}
}
