// Command syscallfilter runs a command under the system call filter of a
// systemd unit, as systemd would start it: the unit's SystemCallFilter=
// lines (an allow list, then ~deny lists) expanded through
// `systemd-analyze syscall-filter`, every other system call failing with
// EPERM (SystemCallErrorNumber=EPERM), and no_new_privs set. The end-to-end
// tests use it where systemd is not PID 1 (no systemd-run). Test tool, never
// shipped; Linux only.
//
//	syscallfilter -unit packaging/egressguard.service -- COMMAND [ARG]...
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "syscallfilter:", err)
		os.Exit(2)
	}
}

func run() error {
	unit := flag.String("unit", "", "systemd unit file whose SystemCallFilter= applies")
	flag.Parse()
	if *unit == "" || flag.NArg() == 0 {
		return errors.New("usage: syscallfilter -unit FILE -- COMMAND [ARG]")
	}
	allow, deny, err := unitFilter(*unit)
	if err != nil {
		return err
	}
	groups, err := syscallGroups()
	if err != nil {
		return err
	}
	info, err := arch.GetInfo("")
	if err != nil {
		return err
	}
	allowed := map[string]bool{}
	for _, n := range expand(allow, groups) {
		allowed[n] = true
	}
	for _, n := range expand(deny, groups) {
		delete(allowed, n)
	}
	var names []string
	for n := range allowed {
		if _, ok := info.SyscallNames[n]; ok { // other architectures' names
			names = append(names, n)
		}
	}
	path, err := exec.LookPath(flag.Arg(0))
	if err != nil {
		return err
	}
	// The filter applies to every thread (TSYNC) and survives execve.
	runtime.LockOSThread()
	err = seccomp.LoadFilter(seccomp.Filter{
		NoNewPrivs: true,
		Flag:       seccomp.FilterFlagTSync,
		Policy: seccomp.Policy{
			DefaultAction: seccomp.ActionErrno,
			Syscalls:      []seccomp.SyscallGroup{{Action: seccomp.ActionAllow, Names: names}},
		},
	})
	if err != nil {
		return fmt.Errorf("load the filter: %w", err)
	}
	return syscall.Exec(path, flag.Args(), os.Environ())
}

// unitFilter returns the items of the unit's allow-list lines and of its
// deny-list ("~") lines.
func unitFilter(path string) (allow, deny []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "SystemCallFilter=")
		if !ok {
			continue
		}
		if d, ok := strings.CutPrefix(v, "~"); ok {
			deny = append(deny, strings.Fields(d)...)
		} else {
			allow = append(allow, strings.Fields(v)...)
		}
	}
	if len(allow) == 0 {
		return nil, nil, fmt.Errorf("%s: no SystemCallFilter= allow list", path)
	}
	return allow, deny, sc.Err()
}

// syscallGroups reads every @group's members from systemd-analyze.
func syscallGroups() (map[string][]string, error) {
	out, err := exec.Command("systemd-analyze", "syscall-filter").Output()
	if err != nil {
		return nil, fmt.Errorf("systemd-analyze syscall-filter: %w", err)
	}
	groups := map[string][]string{}
	var cur string
	for _, line := range strings.Split(string(out), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
		case !strings.HasPrefix(line, " ") && strings.HasPrefix(t, "@"):
			cur = t
		case cur != "":
			groups[cur] = append(groups[cur], t)
		}
	}
	if len(groups) == 0 {
		return nil, errors.New("systemd-analyze syscall-filter listed no groups")
	}
	return groups, nil
}

// expand resolves @groups (recursively) into system call names.
func expand(items []string, groups map[string][]string) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(string)
	walk = func(it string) {
		if seen[it] {
			return
		}
		seen[it] = true
		if strings.HasPrefix(it, "@") {
			for _, m := range groups[it] {
				walk(m)
			}
			return
		}
		out = append(out, it)
	}
	for _, it := range items {
		walk(it)
	}
	return out
}
