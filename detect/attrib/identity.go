package attrib

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/egressguard/egressguard/detect"
)

// LibvirtQemuDir is where libvirtd keeps the live XML of running QEMU
// domains, one <name>.xml per domain.
const LibvirtQemuDir = "/run/libvirt/qemu"

// Port-name conventions of the platforms that create VM ports.
var (
	// Proxmox VE: tap<VMID>i<N> (QEMU NIC N), fwpr<VMID>p<N> (firewall
	// bridge side) and veth<VMID>i<N> (container NIC N).
	proxmoxPort = regexp.MustCompile(`^(?:tap|veth)([1-9][0-9]{2,8})i([0-9]+)$|^fwpr([1-9][0-9]{2,8})p([0-9]+)$`)
	// OpenStack Neutron: tap/qvo/qvb + the first 11 characters of the port
	// UUID (8 hex, a dash, 2 hex): the 14-byte interface name limit.
	neutronPort = regexp.MustCompile(`^(?:tap|qvo|qvb)([0-9a-f]{8}-[0-9a-f]{2})$`)
)

// Identities maps VM bridge ports (interface names) to what the operator
// calls the VM behind them.
type Identities map[string]detect.VM

// Identify names the VM behind each port from the live libvirt domain XML in
// libvirtDir (absent directory: none) and the Proxmox and OpenStack naming
// conventions. A libvirt domain behind an OpenStack port keeps both the
// domain's name and UUID and the Neutron port prefix. Unreadable or
// malformed XML files are reported and skipped.
func Identify(ports []string, libvirtDir string) (Identities, error) {
	out := Identities{}
	domains, err := ReadLibvirt(libvirtDir)
	for _, p := range ports {
		vm, ok := domains[p]
		if m := neutronPort.FindStringSubmatch(p); m != nil {
			vm.Platform, vm.NeutronPort, ok = "openstack", m[1], true
		} else if m := proxmoxPort.FindStringSubmatch(p); m != nil && !ok {
			id := m[1] + m[3]
			n, _ := strconv.Atoi(id)
			vm.Platform, vm.VMID, ok = "proxmox", n, true
		}
		if ok {
			vm.Port = p
			out[p] = vm
		}
	}
	return out, err
}

// libvirtDomain is the part of a domain's live XML that names it and its
// interfaces. The live file wraps <domain> in <domstatus>; a plain domain
// XML has it at the root.
type libvirtDomain struct {
	Name       string             `xml:"name"`
	UUID       string             `xml:"uuid"`
	Interfaces []libvirtInterface `xml:"devices>interface"`
}

type libvirtInterface struct {
	Target struct {
		Dev string `xml:"dev,attr"`
	} `xml:"target"`
	MAC struct {
		Address string `xml:"address,attr"`
	} `xml:"mac"`
}

// ReadLibvirt reads every *.xml in dir and maps each interface target
// (vnetN, tapXXXXXXXX-XX …) to its domain's name and UUID.
func ReadLibvirt(dir string) (map[string]detect.VM, error) {
	out := map[string]detect.VM{}
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		return out, fmt.Errorf("attrib: libvirt dir %s: %w", dir, err)
	}
	var errs []error
	for _, f := range files {
		d, err := readDomain(f)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // a domain stopping meanwhile
				errs = append(errs, err)
			}
			continue
		}
		for _, ifc := range d.Interfaces {
			if ifc.Target.Dev == "" {
				continue
			}
			out[ifc.Target.Dev] = detect.VM{Platform: "libvirt", Name: d.Name, UUID: d.UUID}
		}
	}
	return out, errors.Join(errs...)
}

func readDomain(path string) (libvirtDomain, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return libvirtDomain{}, fmt.Errorf("attrib: libvirt domain %s: %w", path, err)
	}
	var status struct {
		XMLName xml.Name
		Domain  libvirtDomain `xml:"domain"`
	}
	if err := xml.Unmarshal(b, &status); err != nil {
		return libvirtDomain{}, fmt.Errorf("attrib: libvirt domain %s: %w", path, err)
	}
	if status.XMLName.Local == "domain" {
		var d libvirtDomain
		if err := xml.Unmarshal(b, &d); err != nil {
			return libvirtDomain{}, fmt.Errorf("attrib: libvirt domain %s: %w", path, err)
		}
		return d, nil
	}
	if status.XMLName.Local != "domstatus" || strings.TrimSpace(status.Domain.Name) == "" {
		return libvirtDomain{}, fmt.Errorf("attrib: libvirt domain %s: root <%s>, want <domstatus> or <domain> with a <name>", path, status.XMLName.Local)
	}
	return status.Domain, nil
}
