package attrib

import (
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

	eglab "github.com/egressguard/egressguard/internal/lab"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sendUDP sends one datagram from inside namespace ns, which makes the VM
// ARP for dst and the bridge learn its MAC. It runs in a child process: a
// goroutine that switched namespaces could wedge the main thread in ns, and
// /proc/net (what SocketHolders reads) follows the main thread.
func sendUDP(t *testing.T, ns, ip, port string) {
	t.Helper()
	run(t, "ip", "netns", "exec", ns, "bash", "-c", "echo egressguard >/dev/udp/"+ip+"/"+port)
}

// TestNetResolverBridgeLab resolves sources in internal/lab's node, which
// holds bridge br0 (eglab.BridgeAddr4) with the ports vnet1 and vnet2 of
// two VM namespaces.
func TestNetResolverBridgeLab(t *testing.T) {
	l := eglab.NewT(t, "egd", 2)
	vm1, vm2 := l.VMs[0], l.VMs[1]
	sendUDP(t, vm1.NS, eglab.BridgeAddr4.String(), "9") // vm1 → the bridge host: neighbour entry and FDB
	sendUDP(t, vm2.NS, vm1.Addr.String(), "9")          // vm2 → vm1: FDB only

	h, err := netns.GetFromName(l.Node)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	r, err := OpenNet(NetOptions{NetNS: int(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	stranger := netip.MustParseAddr("198.19.128.99")
	mac2, err := net.ParseMAC(vm2.MAC)
	if err != nil {
		t.Fatal(err)
	}
	capture := map[netip.Addr]net.HardwareAddr{vm2.Addr: mac2}
	want := []Source{
		{Addr: vm1.Addr, MAC: vm1.MAC, MACFrom: "neighbour", NeighbourInterface: "br0", Bridge: "br0", BridgePort: vm1.Port},
		{Addr: vm2.Addr, MAC: vm2.MAC, MACFrom: "capture", Bridge: "br0", BridgePort: vm2.Port},
		{Addr: stranger},
	}
	var got []Source
	// ARP replies and FDB learning happen in softirq context: give them a moment.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		tables, err := r.Tables()
		if err != nil {
			t.Fatal(err)
		}
		got = tables.Resolve([]netip.Addr{vm1.Addr, vm2.Addr, stranger}, capture)
		if slices.Equal(got, want) || time.Now().After(deadline) {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Resolve:\n got %+v\nwant %+v\nbridge fdb:\n%s\nneighbours:\n%s", got, want,
			run(t, "bridge", "-n", l.Node, "fdb", "show", "br", "br0"), run(t, "ip", "-n", l.Node, "neigh", "show"))
	}
	// iproute2 is the independent oracle for what the kernel's FDB holds.
	fdb := run(t, "bridge", "-n", l.Node, "fdb", "show", "br", "br0")
	for _, line := range []string{vm1.MAC + " dev " + vm1.Port, vm2.MAC + " dev " + vm2.Port} {
		if !strings.Contains(fdb, line) {
			t.Errorf("bridge fdb show lacks %q:\n%s", line, fdb)
		}
	}
}

func TestSocketHoldersFindsThisProcess(t *testing.T) {
	eglab.SkipUnlessRoot(t)
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
