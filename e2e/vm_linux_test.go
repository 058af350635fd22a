package e2e

import (
	"testing"
	"time"

	"github.com/egressguard/egressguard/detect/attrib"
)

// TestVMFloodAttributed floods from the VM behind the node's bridge: the
// verdict names the VM's address and its bridge port vnet1, and the
// mitigation is scope source on that address only.
func TestVMFloodAttributed(t *testing.T) {
	e := newEnv(t, 1, nil)
	vm := e.lab.VMs[0]
	e.startAgent()
	p := e.poll(250 * time.Millisecond)
	start := time.Now()
	fl := e.flood(vm.NS, 8*time.Second)
	thr := p.waitFor(t, "throttle", start, 8*time.Second, func(s sample) bool { return s.mitigated })
	t.Logf("VM flood throttled %.2f s after start: scope %s sources %v", thr.at.Sub(start).Seconds(), thr.mit.Scope, thr.mit.Sources)
	if string(thr.mit.Scope) != "source" || len(thr.mit.Sources) != 1 || thr.mit.Sources[0].Addr() != vm.Addr {
		t.Errorf("mitigation scope %s sources %v: want source [%s/32]", thr.mit.Scope, thr.mit.Sources, vm.Addr)
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
