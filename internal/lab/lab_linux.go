package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The lab's addresses: all inside the benchmark ranges the inet namespace owns.
var (
	// NodeAddr4 and NodeAddr6 are the node's addresses on up0.
	NodeAddr4 = netip.MustParseAddr("198.19.255.2")
	NodeAddr6 = netip.MustParseAddr("2001:db8:ff:ffff::2")
	// Gateway4 and Gateway6 are the inet side of the uplink (wan0).
	Gateway4 = netip.MustParseAddr("198.19.255.1")
	Gateway6 = netip.MustParseAddr("2001:db8:ff:ffff::1")
	// BridgeAddr4 is the node's address on br0, the VMs' gateway.
	BridgeAddr4 = netip.MustParseAddr("198.19.128.1")
	// VMNet4 holds the VMs' addresses; the inet namespace routes it back via the node.
	VMNet4 = netip.MustParsePrefix("198.19.128.0/24")
	// Inet4 and Inet6 are the ranges the inet namespace answers for.
	Inet4 = netip.MustParsePrefix("198.18.0.0/15")
	Inet6 = netip.MustParsePrefix("2001:db8:ff::/48")
	// Dst4 and Dst6 are fixed destinations inside Inet4 and Inet6 for
	// iperf3 and other single-destination traffic.
	Dst4 = netip.MustParseAddr("198.18.0.10")
	Dst6 = netip.MustParseAddr("2001:db8:ff::10")
)

// Uplink is the node's uplink interface, the one the agent watches.
const Uplink = "up0"

// Options shape a lab.
type Options struct {
	// Prefix starts every namespace name, e.g. "egl-1a2b3c"; RandomPrefix
	// makes one. Names are Prefix-node, Prefix-inet and Prefix-vmN.
	Prefix string
	// VMs is the number of VM namespaces behind the node's bridge br0; 0
	// means no bridge.
	VMs int
	// Queues is the number of transmit and receive queues of the uplink
	// veth; 0 or 1 means one (more makes the kernel give up0 an mq root).
	Queues int
	// Bridged builds a bridged hypervisor instead (bridged_linux.go): up0 is
	// a port of br0, which holds the node's address and default route, and
	// the VMs sit on the uplink's own subnet.
	Bridged bool
}

// VM is one namespace behind the node's bridge.
type VM struct {
	NS   string     // namespace name
	Port string     // its bridge port in the node namespace: vnet1, vnet2…
	Addr netip.Addr // its address in VMNet4
	MAC  string     // the MAC of its eth0, colon-hex
}

// Lab is a running lab. Its methods are safe for concurrent use.
type Lab struct {
	Prefix string
	Node   string // the node namespace
	Inet   string // the internet namespace
	VMs    []VM

	queues int // of the uplink, for RecreateUplink

	mu     sync.Mutex
	nss    []string // created, removed by Close in reverse
	procs  []*Proc
	closed bool
}

// RandomPrefix returns base-<6 hex digits>, a unique namespace prefix.
func RandomPrefix(base string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return base + "-" + hex.EncodeToString(b)
}

// VMAddr is the address of VM i (1-based) in VMNet4.
func VMAddr(i int) netip.Addr {
	b := BridgeAddr4.As4()
	b[3] = byte(10 + i)
	return netip.AddrFrom4(b)
}

// New builds the lab. On error, what was built is removed.
func New(o Options) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: needs root for network namespaces")
	}
	if o.Prefix == "" {
		return nil, errors.New("lab: options.prefix \"\": want a unique prefix such as egl-1a2b3c")
	}
	if o.VMs < 0 || o.VMs > 200 {
		return nil, fmt.Errorf("lab: options.vms %d: want 0 to 200", o.VMs)
	}
	if o.Queues < 0 || o.Queues > 64 {
		return nil, fmt.Errorf("lab: options.queues %d: want 0 to 64", o.Queues)
	}
	l := &Lab{Prefix: o.Prefix, Node: o.Prefix + "-node", Inet: o.Prefix + "-inet", queues: o.Queues}
	build := l.build
	if o.Bridged {
		build = l.buildBridged
	}
	if err := build(o); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// SkipUnlessRoot skips a kernel test when not run as root: network
// namespaces, tc, raw and packet sockets all need it (CI runs as root).
func SkipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root for network namespaces, tc and raw sockets (run as root, e.g. sudo go test)")
	}
}

// NewT builds a lab for a test with a random prefix under base (e.g.
// "egl"), skips the test when not root, and removes the lab in t.Cleanup.
func NewT(t testing.TB, base string, vms int) *Lab {
	t.Helper()
	return NewTWith(t, base, Options{VMs: vms})
}

// NewTWith is NewT with the lab's other Options; o.Prefix is replaced by a
// random prefix under base.
func NewTWith(t testing.TB, base string, o Options) *Lab {
	t.Helper()
	SkipUnlessRoot(t)
	o.Prefix = RandomPrefix(base)
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	return l
}

func (l *Lab) addNS(name string) error {
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	l.mu.Lock()
	l.nss = append(l.nss, name)
	l.mu.Unlock()
	return nil
}

// uplinkSteps create the node's uplink up0 (with queues transmit and
// receive queues, see Options) and its inet side wan0, their addresses,
// the node's default routes and the inet side's route back to the VMs.
func (l *Lab) uplinkSteps(queues int) [][]string {
	return [][]string{
		uplinkVeth(l.Node, l.Inet, queues),
		{"ip", "-n", l.Node, "addr", "add", NodeAddr4.String() + "/30", "dev", Uplink},
		{"ip", "-n", l.Inet, "addr", "add", Gateway4.String() + "/30", "dev", "wan0"},
		{"ip", "-n", l.Node, "-6", "addr", "add", NodeAddr6.String() + "/64", "dev", Uplink, "nodad"},
		{"ip", "-n", l.Inet, "-6", "addr", "add", Gateway6.String() + "/64", "dev", "wan0", "nodad"},
		{"ip", "-n", l.Node, "link", "set", Uplink, "up"},
		{"ip", "-n", l.Inet, "link", "set", "wan0", "up"},
		{"ip", "-n", l.Node, "route", "add", "default", "via", Gateway4.String()},
		{"ip", "-n", l.Node, "-6", "route", "add", "default", "via", Gateway6.String()},
		{"ip", "-n", l.Inet, "route", "add", VMNet4.String(), "via", NodeAddr4.String()},
	}
}

func (l *Lab) build(o Options) error {
	for _, ns := range []string{l.Node, l.Inet} {
		if err := l.addNS(ns); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"ip", "-n", l.Node, "link", "set", "lo", "up"},
		{"ip", "-n", l.Inet, "link", "set", "lo", "up"},
	}
	steps = append(steps, l.uplinkSteps(o.Queues)...)
	steps = append(steps, [][]string{
		// The node's own addresses lie inside the ranges. The local routes
		// go to table main, where the uplink's /30 and /64 and the VM route
		// are more specific: in table local (the default for type local,
		// and looked up first for IPv6) they would swallow the node's
		// addresses and the inet side would answer itself.
		{"ip", "-n", l.Inet, "route", "add", "local", Inet4.String(), "dev", "lo", "table", "main"},
		{"ip", "-n", l.Inet, "-6", "route", "add", "local", Inet6.String(), "dev", "lo", "table", "main"},
		// Floods fill the accept queues; big backlogs keep the benign
		// handshakes answered.
		{"ip", "netns", "exec", l.Inet, "sysctl", "-qw", "net.core.somaxconn=8192", "net.ipv4.tcp_max_syn_backlog=8192"},
	}...)
	if o.VMs > 0 {
		steps = append(steps,
			[]string{"ip", "-n", l.Node, "link", "add", "br0", "type", "bridge"},
			[]string{"ip", "-n", l.Node, "addr", "add", BridgeAddr4.String() + "/24", "dev", "br0"},
			[]string{"ip", "-n", l.Node, "link", "set", "br0", "up"},
			[]string{"ip", "netns", "exec", l.Node, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		)
	}
	if err := runAll(steps); err != nil {
		return err
	}
	for i := 1; i <= o.VMs; i++ {
		if err := l.addVM(i, netip.PrefixFrom(VMAddr(i), 24), BridgeAddr4); err != nil {
			return err
		}
	}
	return l.waitBridge()
}

// uplinkVeth is the command that adds up0 in node with its peer wan0 in inet.
func uplinkVeth(node, inet string, queues int) []string {
	cmd := []string{"ip", "-n", node, "link", "add", Uplink}
	if queues > 1 {
		q := strconv.Itoa(queues)
		cmd = append(cmd, "numtxqueues", q, "numrxqueues", q)
	}
	return append(cmd, "type", "veth", "peer", "name", "wan0", "netns", inet)
}

// NewNetNS creates a bare namespace (its loopback up) named base-<6 hex
// digits> for a test, skips the test when not root, and deletes the
// namespace in t.Cleanup.
func NewNetNS(t testing.TB, base string) string {
	t.Helper()
	SkipUnlessRoot(t)
	name := RandomPrefix(base)
	if err := run("ip", "netns", "add", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := run("ip", "netns", "del", name); err != nil {
			t.Errorf("netns cleanup: %v", err)
		}
	})
	if err := run("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	return name
}

// waitBridge waits for the VM ports to forward (the bridge's ports go
// through listening/learning only with STP, off by default, but the
// carrier of a fresh veth takes a moment).
// addVM creates VM i behind br0 with address addr and default gateway gw.
func (l *Lab) addVM(i int, addr netip.Prefix, gw netip.Addr) error {
	vm := VM{NS: fmt.Sprintf("%s-vm%d", l.Prefix, i), Port: fmt.Sprintf("vnet%d", i), Addr: addr.Addr()}
	if err := l.addNS(vm.NS); err != nil {
		return err
	}
	err := runAll([][]string{
		{"ip", "-n", vm.NS, "link", "set", "lo", "up"},
		{"ip", "-n", l.Node, "link", "add", vm.Port, "type", "veth", "peer", "name", "eth0", "netns", vm.NS},
		{"ip", "-n", l.Node, "link", "set", vm.Port, "master", "br0"},
		{"ip", "-n", l.Node, "link", "set", vm.Port, "up"},
		{"ip", "-n", vm.NS, "addr", "add", addr.String(), "dev", "eth0"},
		{"ip", "-n", vm.NS, "link", "set", "eth0", "up"},
		{"ip", "-n", vm.NS, "route", "add", "default", "via", gw.String()},
	})
	if err != nil {
		return err
	}
	out, err := output("ip", "-n", vm.NS, "-br", "link", "show", "eth0")
	if err != nil {
		return err
	}
	if f := strings.Fields(out); len(f) >= 3 {
		vm.MAC = f[2]
	}
	l.VMs = append(l.VMs, vm)
	return nil
}

func (l *Lab) waitBridge() error {
	deadline := time.Now().Add(5 * time.Second)
	for _, vm := range l.VMs {
		for {
			out, err := output("ip", "-n", l.Node, "-br", "link", "show", vm.Port)
			if err == nil && strings.Contains(out, "UP") && !strings.Contains(out, "LOWERLAYERDOWN") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("lab: bridge port %s not up: %s", vm.Port, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// Close kills every process started with Start and removes every namespace
// the lab created. It is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, nss := l.procs, l.nss
	l.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	var errs []error
	for i := len(nss) - 1; i >= 0; i-- {
		// Processes started by others in the namespace (iperf3 -D, a
		// leftover agent) would keep it alive: kill them first.
		if out, err := output("ip", "netns", "pids", nss[i]); err == nil {
			self := strconv.Itoa(os.Getpid())
			for _, pid := range strings.Fields(out) {
				if pid == self {
					continue // never ourselves, whatever a thread of ours entered
				}
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		if err := run("ip", "netns", "del", nss[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Namespaces lists the namespaces the lab created and has not removed.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	return append([]string(nil), l.nss...)
}

// Leftovers lists the namespaces in `ip netns list` whose names start with
// prefix: after Close it must be empty.
func Leftovers(prefix string) ([]string, error) {
	out, err := output("ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var left []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			left = append(left, f[0])
		}
	}
	return left, nil
}

func run(args ...string) error {
	_, err := output(args...)
	return err
}

func output(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func runAll(steps [][]string) error {
	for _, s := range steps {
		if err := run(s...); err != nil {
			return err
		}
	}
	return nil
}
