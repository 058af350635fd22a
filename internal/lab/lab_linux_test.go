package lab

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestLab builds a lab with one VM, checks that the node and the VM reach
// random inet addresses over IPv4 (and the node over IPv6), that the VM's
// traffic leaves the node's uplink with its own source address, and that
// Close leaves no namespace behind.
func TestLab(t *testing.T) {
	l := NewT(t, "egl", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.InstallTruth(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := l.IperfServer(ctx, 5201)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	for _, c := range []struct{ ns, dst string }{
		{l.Node, "198.18.77.1"}, {l.Node, "2001:db8:ff:1::1"}, {l.VMs[0].NS, "198.19.3.4"},
	} {
		r, err := l.Iperf(ctx, c.ns, IperfOptions{Dst: netip.MustParseAddr(c.dst), Port: 5201, Duration: time.Second, Rate: "50M"})
		if err != nil {
			t.Fatalf("iperf3 %s from %s: %v", c.dst, c.ns, err)
		}
		if r.ReceivedBps < 40e6 || r.ReceivedBps > 60e6 {
			t.Errorf("iperf3 %s from %s at 50M: received %.1f Mbit/s", c.dst, c.ns, r.ReceivedBps/1e6)
		}
	}
	if l.VMs[0].Port != "vnet1" || l.VMs[0].MAC == "" {
		t.Errorf("VM = %+v", l.VMs[0])
	}
	out, err := l.Exec(ctx, l.Node, "bridge", "fdb", "show", "br", "br0")
	if err != nil || !strings.Contains(out, l.VMs[0].MAC+" dev vnet1") {
		t.Errorf("bridge fdb: want %s on vnet1: %v\n%s", l.VMs[0].MAC, err, out)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	left, err := Leftovers(l.Prefix)
	if err != nil || len(left) > 0 {
		t.Fatalf("after Close: %v %v", left, err)
	}
}
