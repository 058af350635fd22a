package lab

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestBridgedLab: in the bridged lab the node's default route is on br0, up0
// and the VM ports are its ports, the gateway was learned behind up0, and
// a VM reaches the internet through the bridge and up0.
func TestBridgedLab(t *testing.T) {
	l := NewTWith(t, "egl", Options{VMs: 1, Bridged: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := l.Exec(ctx, l.Node, "ip", "route", "show", "default"); err != nil || !strings.Contains(out, "dev br0") {
		t.Errorf("default route: %q, %v; want it on br0", out, err)
	}
	for _, port := range []string{Uplink, l.VMs[0].Port} {
		if out, err := l.Exec(ctx, l.Node, "ip", "-br", "link", "show", "master", "br0"); err != nil || !strings.Contains(out, port) {
			t.Errorf("br0 ports: %q, %v; want %s", out, err, port)
		}
	}
	srv, err := l.IperfServer(ctx, 5201)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	r, err := l.Iperf(ctx, l.VMs[0].NS, IperfOptions{Dst: Dst4, Port: 5201, Duration: time.Second, Rate: "10M"})
	if err != nil || r.ReceivedBps < 5e6 {
		t.Errorf("VM to the internet through the bridge: %+v, %v", r, err)
	}
}
