package labagent

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// UnitCapabilities reads the capability bounding set of a systemd unit file
// (every CapabilityBoundingSet= line, as systemd merges them), e.g.
// ["CAP_NET_ADMIN", "CAP_NET_RAW"]. A unit without one is an error: the
// lab must never run the agent with more than the package grants.
func UnitCapabilities(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labagent: unit capabilities: %w", err)
	}
	defer f.Close()
	var caps []string
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "CapabilityBoundingSet=")
		if !ok {
			continue
		}
		if strings.HasPrefix(v, "~") {
			return nil, fmt.Errorf("labagent: %s: CapabilityBoundingSet=%s: a deny list is not supported here", path, v)
		}
		found = true
		if v == "" {
			caps = nil // an empty assignment resets the list
		}
		caps = append(caps, strings.Fields(v)...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("labagent: unit capabilities: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("labagent: %s: no CapabilityBoundingSet=", path)
	}
	return caps, nil
}

// UnitConfinement returns what the packaged unit confines the agent to:
// its capability bounding set (UnitCapabilities) and the command prefix
// that applies its SystemCallFilter= (filter is the lab's syscallfilter
// tool, lab.Tools.SyscallFilter).
func UnitConfinement(unit, filter string) (caps, syscalls []string, err error) {
	caps, err = UnitCapabilities(unit)
	if err != nil {
		return nil, nil, err
	}
	abs, err := filepath.Abs(unit)
	if err != nil {
		return nil, nil, fmt.Errorf("labagent: unit %s: %w", unit, err)
	}
	return caps, []string{filter, "-unit", abs, "--"}, nil
}

// setprivArgs is the command prefix that runs a root process with exactly
// caps (["CAP_NET_ADMIN", ...]) as a systemd unit with that bounding set,
// User=root and NoNewPrivileges=yes does: on exec, root's permitted and
// effective sets become the bounding set, and nothing is inherited.
func setprivArgs(caps []string) []string {
	set := "-all"
	for _, c := range caps {
		set += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	return []string{"setpriv", "--bounding-set=" + set, "--inh-caps=-all", "--ambient-caps=-all", "--no-new-privs", "--"}
}
