package detect

import (
	"net/netip"
	"slices"
)

// Signature names what floods, so the shaper can throttle exactly that.
// Empty lists mean "any".
type Signature struct {
	// Protocols flooding: "tcp", "udp", "icmp", "other".
	Protocols []string `json:"protocols"`
	// DstPorts are the top destination ports; empty when the flood spreads
	// over many ports (or carries none, as ICMP).
	DstPorts []uint16 `json:"dst_ports,omitempty"`
	// AvgPacketBytes is the flood's average packet size on the wire.
	AvgPacketBytes float64 `json:"avg_packet_bytes"`
	// Spoofed is true when a VM port emits source addresses it does not own:
	// Sources then says nothing useful and the port is the handle.
	Spoofed bool `json:"spoofed"`
	// Sources are the flooding source addresses, when they are the key.
	Sources []netip.Addr `json:"sources,omitempty"`
	// Ports are the VM bridge ports (interface names) the flood enters by.
	Ports []string `json:"ports,omitempty"`
	// VMs are what the operator calls the VMs behind Ports, where known.
	VMs []VM `json:"vms,omitempty"`
}

// VM is the operator's name for the machine behind a bridge port.
type VM struct {
	Port string `json:"port"`
	// Platform is "libvirt", "proxmox" or "openstack".
	Platform    string `json:"platform"`
	Name        string `json:"name,omitempty"`         // libvirt domain name
	UUID        string `json:"uuid,omitempty"`         // libvirt domain UUID
	VMID        int    `json:"vmid,omitempty"`         // Proxmox VMID
	NeutronPort string `json:"neutron_port,omitempty"` // OpenStack Neutron port id prefix
}

// mergeSignatures unions the signatures of several flooding keys: one
// throttle must cover them all. A key flooding any port makes the union any
// port; packet sizes are averaged weighted by each key's packets.
func mergeSignatures(sigs []Signature, packets []float64) Signature {
	var out Signature
	anyPort := false
	var wsum float64
	for i, s := range sigs {
		out.Protocols = union(out.Protocols, s.Protocols)
		if len(s.DstPorts) == 0 {
			anyPort = true
		}
		out.DstPorts = union(out.DstPorts, s.DstPorts)
		out.AvgPacketBytes += s.AvgPacketBytes * packets[i]
		wsum += packets[i]
		out.Spoofed = out.Spoofed || s.Spoofed
		out.Sources = union(out.Sources, s.Sources)
		out.Ports = union(out.Ports, s.Ports)
		out.VMs = union(out.VMs, s.VMs)
	}
	if anyPort {
		out.DstPorts = nil
	}
	if wsum > 0 {
		out.AvgPacketBytes /= wsum
	}
	return out
}

func union[T comparable](a, b []T) []T {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}
