package e2e

import (
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect/attrib"
)

// TestVMFloodAttributed floods from the VM behind the node's bridge: the
// verdict names the VM's address and its bridge port vnet1, and the
// mitigation is scope port on vnet1 only: the uplink is not throttled.
func TestVMFloodAttributed(t *testing.T) {
	e := newEnv(t, 1, nil)
	vm := e.lab.VMs[0]
	e.startAgent()
	p := e.poll(250 * time.Millisecond)
	start := time.Now()
	fl := e.flood(vm.NS, 8*time.Second)
	thr := e.waitMitigation(vm.Port, 8*time.Second)
	t.Logf("VM flood throttled %.2f s after start: %s scope %s protocols %v ports %v", time.Since(start).Seconds(), thr.Interface, thr.Scope, thr.Protocols, thr.Ports)
	if string(thr.Scope) != "port" || len(thr.Sources) != 0 {
		t.Errorf("mitigation scope %s sources %v: want port %s", thr.Scope, thr.Sources, vm.Port)
	}
	for _, s := range p.snapshot() {
		if s.mitigated {
			t.Errorf("the uplink %s was throttled too: %+v", s.mit.Interface, s.mit)
			break
		}
	}
	// Attribution is written when the verdict turns flood; read it from status.
	var at attrib.Attribution
	st := e.status()
	for _, is := range st.Interfaces {
		if is.Name == "up0" && is.Attribution != nil {
			at = *is.Attribution
		}
	}
	t.Logf("attribution: %+v", at.Sources)
	if len(at.Sources) == 0 || at.Sources[0].Addr != vm.Addr || at.Sources[0].BridgePort != vm.Port || at.Sources[0].MAC != vm.MAC {
		t.Errorf("attribution %+v: want %s, MAC %s on bridge port %s", at.Sources, vm.Addr, vm.MAC, vm.Port)
	}
	p.Stop()
	fl.Kill()
}
