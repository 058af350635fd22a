package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect/attrib"
	"github.com/egressguard/egressguard/internal/lab"
)

// TestBridgedHypervisor: the node's address and default route are on the
// bridge br0 and its NIC up0 is a port of it, as on Proxmox (vmbr0) or
// libvirt's bridged networking. With no interfaces configured the agent
// watches up0 in br0's stead (status says so); a VM's flood, bridged and
// so never on br0's own transmit path, is seen, attributed to the VM's
// port, and throttled on that port (scope port; tc's Sent bytes as the
// oracle), while doctor names up0 as br0's uplink port.
func TestBridgedHypervisor(t *testing.T) {
	e := newEnvWith(t, lab.Options{VMs: 1, Bridged: true}, func(c *config.Config) { c.Interfaces = nil })
	vm := e.lab.VMs[0]
	e.startAgent()
	st := e.status()
	if len(st.Interfaces) != 1 || st.Interfaces[0].Name != lab.Uplink || st.Interfaces[0].Bridge != "br0" {
		t.Fatalf("watched %+v: want %s standing in for br0", st.Interfaces, lab.Uplink)
	}
	t.Logf("status: %s watched: %s", st.Interfaces[0].Name, st.Interfaces[0].Watched)
	out := e.cli(0, "doctor")
	t.Logf("doctor:\n%s", out)
	if !strings.Contains(out, "interface "+lab.Uplink) || !strings.Contains(out, "uplink port of bridge br0") {
		t.Errorf("doctor does not name %s as br0's uplink port", lab.Uplink)
	}
	if out := e.cli(0, "status"); !strings.Contains(out, "note: up0 is watched and throttled for bridge br0") {
		t.Errorf("status does not say up0 stands in for br0:\n%s", out)
	}

	p := e.poll(250 * time.Millisecond)
	start := time.Now()
	fl := e.flood(vm.NS, 20*time.Second)
	defer fl.Kill()
	thr := e.waitMitigation(vm.Port, 10*time.Second)
	t.Logf("VM flood throttled on %s %.2f s after it started: scope %s protocols %v ports %v",
		thr.Interface, time.Since(start).Seconds(), thr.Scope, thr.Protocols, thr.Ports)
	if string(thr.Scope) != "port" {
		t.Errorf("mitigation scope %s: want port on %s", thr.Scope, vm.Port)
	}
	s := p.waitFor(t, "attribution", start, 10*time.Second, func(s sample) bool { return s.iface.Attribution != nil })
	p.Stop()
	var at struct {
		Sources []attrib.Source `json:"sources"`
	}
	b, _ := json.Marshal(s.iface.Attribution)
	if err := json.Unmarshal(b, &at); err != nil {
		t.Fatal(err)
	}
	t.Logf("attribution: %s", b)
	if len(at.Sources) == 0 || at.Sources[0].Addr != vm.Addr || at.Sources[0].BridgePort != vm.Port {
		t.Errorf("attribution %+v: want %s on bridge port %s", at.Sources, vm.Addr, vm.Port)
	}
	time.Sleep(time.Second)
	sent0, at0 := e.throttledClass(vm.Port).Bytes, time.Now()
	time.Sleep(4 * time.Second)
	sent1, at1 := e.throttledClass(vm.Port).Bytes, time.Now()
	egress := float64(sent1-sent0) * 8 / at1.Sub(at0).Seconds()
	t.Logf("throttled class on %s sent %.3f Mbit/s of the VM's flood (rate %.1f)", vm.Port, egress/1e6, rateBps/1e6)
	if sent1 == sent0 || egress > 1.2*rateBps {
		t.Errorf("throttled class %.3f Mbit/s: want the VM's flood in it, at most 1.2 × %.1f", egress/1e6, rateBps/1e6)
	}
}
