package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/egressguard/egressguard/internal/features"
	"github.com/egressguard/egressguard/shaper"
)

// Options say what to check beyond the kernel itself.
type Options struct {
	// Interfaces are the configured interfaces; empty means those holding a
	// default route, as the agent chooses.
	Interfaces []string
	// Probe reports the optional leaf qdiscs (sch_sfq, fq_codel); the CLI
	// passes shaper.Probe. Nil reports them as not probed.
	Probe func(ctx context.Context) (shaper.Features, error)
	// WebhookTokenFile is webhook.token_file, checked as the agent checks it
	// at start.
	WebhookTokenFile string
}

// procRoot is where the process status and sysctls are read from.
const procRoot = "/proc"

// Run checks this node and returns the report; it changes nothing (the
// kernel probes of internal/features leave no trace).
func Run(ctx context.Context, opts Options) Report {
	var r Report
	add := func(c ...Check) { r.Checks = append(r.Checks, c...) }

	add(selfCapabilities())
	add(requiredFeatureCheck("af_packet", "no traffic capture", features.HaveAFPacket()))
	add(requiredFeatureCheck("sch_htb", "no throttle can be installed", features.HaveQdisc("htb")))
	add(requiredFeatureCheck("cls_bpf", "no flood can be classified on the interface's clsact hook (the probe needs sch_ingress's clsact too)", features.HaveFilter("bpf")))
	add(requiredFeatureCheck("act_mirred", "no flood can be redirected to its shaping device", features.HaveAction("mirred")))
	add(requiredFeatureCheck("ifb", "no shaping device can be created", features.HaveLink("ifb")))

	if opts.Probe == nil {
		add(leafChecks(shaper.Features{}, errors.New("no probe given"))...)
	} else {
		add(leafChecks(opts.Probe(ctx))...)
	}

	ifaces, err := watchedInterfaces(opts.Interfaces)
	switch {
	case err != nil:
		add(Check{Name: "interfaces", Status: StatusFail, Detail: err.Error()})
	case len(ifaces) == 0:
		add(noInterfacesCheck())
	}
	for _, w := range ifaces {
		add(interfaceCheck(w))
	}

	add(sysctlChecks(readSysctl(procRoot))...)
	add(webhookTokenCheck(opts.WebhookTokenFile))
	return r
}

// selfCapabilities checks the effective capabilities of this process.
func selfCapabilities() Check {
	status, err := os.ReadFile(filepath.Join(procRoot, "self", "status"))
	if err != nil {
		return Check{Name: "capabilities", Status: StatusFail, Detail: fmt.Sprintf("read: %v", err)}
	}
	capEff, err := parseCapEff(string(status))
	if err != nil {
		return Check{Name: "capabilities", Status: StatusFail, Detail: err.Error()}
	}
	return capabilitiesCheck(capEff)
}

// readSysctl returns a reader of sysctls by dotted name under root/sys.
func readSysctl(root string) func(name string) (string, error) {
	return func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(root, "sys", strings.ReplaceAll(name, ".", "/")))
		if err != nil {
			return "", fmt.Errorf("doctor: read sysctl %s: %w", name, err)
		}
		return string(b), nil
	}
}
