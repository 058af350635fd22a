package attrib

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root (network namespaces, raw sockets); CI runs it as root")
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// bridgeLab builds namespace <p>-br holding bridge br0 with veth ports p1
// and p2, whose peers (eth0, fixed MACs 02:00:00:00:00:1N, 10.99.0.1N/24) sit
// in "VM" namespaces <p>-vm1 and <p>-vm2. br0 holds 10.99.0.1/24.
func bridgeLab(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	p := "egd-" + hex.EncodeToString(b)
	br, vm1, vm2 := p+"-br", p+"-vm1", p+"-vm2"
	for _, ns := range []string{br, vm1, vm2} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", br, "link", "add", "br0", "type", "bridge")
	for i, vm := range []string{vm1, vm2} {
		n := string(rune('1' + i))
		port := "p" + n
		run(t, "ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", vm)
		run(t, "ip", "-n", br, "link", "set", port, "master", "br0")
		run(t, "ip", "-n", br, "link", "set", port, "up")
		run(t, "ip", "-n", vm, "link", "set", "eth0", "address", "02:00:00:00:00:1"+n)
		run(t, "ip", "-n", vm, "addr", "add", "10.99.0.1"+n+"/24", "dev", "eth0")
		run(t, "ip", "-n", vm, "link", "set", "eth0", "up")
	}
	run(t, "ip", "-n", br, "addr", "add", "10.99.0.1/24", "dev", "br0")
	run(t, "ip", "-n", br, "link", "set", "br0", "up")
	return p
}

// sendUDP sends one datagram from inside namespace ns, which makes the VM
// ARP for dst and the bridge learn its MAC. It runs in a child process: a
// goroutine that switched namespaces could wedge the main thread in ns, and
// /proc/net (what SocketHolders reads) follows the main thread.
func sendUDP(t *testing.T, ns, ip, port string) {
	t.Helper()
	run(t, "ip", "netns", "exec", ns, "bash", "-c", "echo egressguard >/dev/udp/"+ip+"/"+port)
}

func TestNetResolverBridgeLab(t *testing.T) {
	needRoot(t)
	p := bridgeLab(t)
	sendUDP(t, p+"-vm1", "10.99.0.1", "9")  // vm1 → the bridge host: neighbour entry and FDB
	sendUDP(t, p+"-vm2", "10.99.0.11", "9") // vm2 → vm1: FDB only

	h, err := netns.GetFromName(p + "-br")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	r, err := OpenNet(NetOptions{NetNS: int(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	vm1, vm2, stranger := netip.MustParseAddr("10.99.0.11"), netip.MustParseAddr("10.99.0.12"), netip.MustParseAddr("10.99.0.99")
	capture := map[netip.Addr]net.HardwareAddr{vm2: {2, 0, 0, 0, 0, 0x12}}
	want := []Source{
		{Addr: vm1, MAC: "02:00:00:00:00:11", MACFrom: "neighbour", NeighbourInterface: "br0", Bridge: "br0", BridgePort: "p1"},
		{Addr: vm2, MAC: "02:00:00:00:00:12", MACFrom: "capture", Bridge: "br0", BridgePort: "p2"},
		{Addr: stranger},
	}
	var got []Source
	// ARP replies and FDB learning happen in softirq context: give them a moment.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		tables, err := r.Tables()
		if err != nil {
			t.Fatal(err)
		}
		got = tables.Resolve([]netip.Addr{vm1, vm2, stranger}, capture)
		if slices.Equal(got, want) || time.Now().After(deadline) {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Resolve:\n got %+v\nwant %+v\nbridge fdb:\n%s\nneighbours:\n%s", got, want,
			run(t, "bridge", "-n", p+"-br", "fdb", "show", "br", "br0"), run(t, "ip", "-n", p+"-br", "neigh", "show"))
	}
	// iproute2 is the independent oracle for what the kernel's FDB holds.
	fdb := run(t, "bridge", "-n", p+"-br", "fdb", "show", "br", "br0")
	for _, line := range []string{"02:00:00:00:00:11 dev p1", "02:00:00:00:00:12 dev p2"} {
		if !strings.Contains(fdb, line) {
			t.Errorf("bridge fdb show lacks %q:\n%s", line, fdb)
		}
	}
}

func TestSocketHoldersFindsThisProcess(t *testing.T) {
	needRoot(t)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_TCP)
	if err != nil {
		t.Fatalf("open raw socket: %v", err)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	procs, err := SocketHolders("/proc")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(procs, func(p Process) bool { return p.PID == os.Getpid() })
	if i < 0 {
		t.Fatalf("pid %d not among the holders %+v", os.Getpid(), procs)
	}
	me := procs[i]
	if me.Exe != exe || me.ExeDeleted {
		t.Errorf("exe %q (deleted %v), want %q", me.Exe, me.ExeDeleted, exe)
	}
	if len(me.Cmdline) == 0 || me.Cmdline[0] != os.Args[0] {
		t.Errorf("cmdline %q, want it to start with %q", me.Cmdline, os.Args[0])
	}
	wantSock := Socket{Kind: KindRaw, Inode: st.Ino, Protocol: syscall.IPPROTO_TCP}
	if !slices.Contains(me.Sockets, wantSock) {
		t.Errorf("sockets %+v lack %+v", me.Sockets, wantSock)
	}
}
