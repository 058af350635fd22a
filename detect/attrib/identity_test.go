package attrib

import (
	"strings"
	"testing"

	"github.com/egressguard/egressguard/detect"
)

func TestIdentify(t *testing.T) {
	ports := []string{"vnet1", "vnet2", "tap5d41c7e2-9a", "tap104i0", "fwpr104p1", "veth230i0", "vnet9", "tap12i0", "eth0"}
	got, err := Identify(ports, "testdata/libvirt-qemu")
	if err == nil || !strings.Contains(err.Error(), "broken.xml") {
		t.Errorf("error %v, want the malformed broken.xml named", err)
	}
	want := Identities{
		"vnet1":          {Port: "vnet1", Platform: "libvirt", Name: "web-frontend-3", UUID: "8c1f2a9e-5b7d-4e3a-9f60-2d4b1c7e9a01"},
		"vnet2":          {Port: "vnet2", Platform: "libvirt", Name: "web-frontend-3", UUID: "8c1f2a9e-5b7d-4e3a-9f60-2d4b1c7e9a01"},
		"tap5d41c7e2-9a": {Port: "tap5d41c7e2-9a", Platform: "openstack", Name: "instance-0000002a", UUID: "3f9e6c1a-0b2d-4c8e-a7f5-6e1d2b3c4a5f", NeutronPort: "5d41c7e2-9a"},
		"tap104i0":       {Port: "tap104i0", Platform: "proxmox", VMID: 104},
		"fwpr104p1":      {Port: "fwpr104p1", Platform: "proxmox", VMID: 104},
		"veth230i0":      {Port: "veth230i0", Platform: "proxmox", VMID: 230},
	}
	if len(got) != len(want) {
		t.Errorf("got %d identities %v, want %d", len(got), got, len(want))
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %+v, want %+v", p, got[p], w)
		}
	}
	// tap12i0: Proxmox VMIDs start at 100; vnet9: no domain names it.
	for _, p := range []string{"vnet9", "tap12i0", "eth0"} {
		if vm, ok := got[p]; ok {
			t.Errorf("%s named %+v, want nothing", p, vm)
		}
	}
}

func TestIdentifyWithoutLibvirt(t *testing.T) {
	got, err := Identify([]string{"tap101i1"}, t.TempDir()+"/absent")
	if err != nil {
		t.Fatal(err)
	}
	if got["tap101i1"] != (detect.VM{Port: "tap101i1", Platform: "proxmox", VMID: 101}) {
		t.Errorf("got %+v", got)
	}
}
