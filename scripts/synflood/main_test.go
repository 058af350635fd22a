package main

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestParseRefusesOutsideLab(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"-src", "10.0.0.1"}, true},
		{[]string{"-src", "10.0.0.1", "-dst", "198.19.0.0/16"}, true},
		{[]string{"-src", "10.0.0.1", "-dst", "8.8.8.0/24"}, false},
		{[]string{"-src", "10.0.0.1", "-dst", "198.0.0.0/8"}, false},
		{[]string{"-6", "-src", "fd00::1", "-dst", "2001:db8:ff:5::/64"}, true},
		{[]string{"-6", "-src", "fd00::1", "-dst", "2001:db8::/32"}, false},
		{[]string{"-6", "-src", "fd00::1", "-dst", "198.18.0.0/15"}, false},
		{[]string{"-src", "10.0.0.1", "-rate", "-1"}, false},
		{[]string{"-src", "10.0.0.1", "-ports", "80,0"}, false},
		{[]string{"-spoof", "10.9.0.0/16"}, true},
		{[]string{"-src", "10.0.0.1", "-udp", "-ports", "random"}, true},
		{[]string{"-src", "10.0.0.1", "-udp", "-icmp"}, false},
	} {
		_, err := parse(tc.args)
		if (err == nil) != tc.ok {
			t.Errorf("parse(%v) err = %v, want ok %v", tc.args, err, tc.ok)
		}
	}
}

func TestBuildDecodesWithValidChecksums(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst string
		udp      bool
		ipOpts   bool
	}{
		{"syn4", "10.0.0.1", "198.18.1.2", false, false},
		{"udp4", "10.0.0.1", "198.19.255.254", true, false},
		{"syn6", "fd00::1", "2001:db8:ff::9", false, false},
		{"udp6", "fd00::1", "2001:db8:ff:1::9", true, false},
		{"syn4 router alert", "10.0.0.1", "198.18.1.2", false, true},
		{"syn6 dstopts", "fd00::1", "2001:db8:ff::9", false, true},
		{"udp6 dstopts", "fd00::1", "2001:db8:ff:1::9", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst)
			kind := protoTCP
			if tc.udp {
				kind = protoUDP
			}
			b := build(nil, src, dst, 40000, 443, 7, kind, 33, tc.ipOpts)
			first := layers.LayerTypeIPv4
			if src.Is6() {
				first = layers.LayerTypeIPv6
			}
			p := gopacket.NewPacket(b, first, gopacket.Default)
			if p.ErrorLayer() != nil {
				t.Fatalf("decode: %v", p.ErrorLayer().Error())
			}
			var l4 interface {
				gopacket.Layer
				SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
			}
			if tc.udp {
				u := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
				if u.DstPort != 443 || len(u.Payload) != 33 {
					t.Fatalf("udp = %+v", u)
				}
				l4 = u
			} else {
				tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if !tcp.SYN || tcp.ACK || tcp.DstPort != 443 || tcp.Seq != 7 {
					t.Fatalf("tcp = %+v", tcp)
				}
				l4 = tcp
			}
			// Re-serialise with computed checksums: the bytes must not change.
			if err := l4.SetNetworkLayerForChecksum(p.NetworkLayer()); err != nil {
				t.Fatal(err)
			}
			buf := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializePacket(buf, gopacket.SerializeOptions{ComputeChecksums: true}, p); err != nil {
				t.Fatal(err)
			}
			if got := buf.Bytes(); string(got) != string(b) {
				t.Errorf("checksums differ:\n got %x\nwant %x", got, b)
			}
		})
	}
}

func TestBuildICMPChecksums(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{{"10.0.0.1", "198.18.1.2"}, {"fd00::1", "2001:db8:ff::9"}} {
		src, dst := netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst)
		b := build(nil, src, dst, 7, 0, 1, protoICMP, 56, false)
		hl, ph := 20, []byte(nil)
		if src.Is6() {
			hl, ph = 40, pseudoHeader(src, dst, 58, len(b)-40)
		}
		if b[hl] != 8 && b[hl] != 128 {
			t.Errorf("%s: type %d, want an echo request", tc.src, b[hl])
		}
		if ck := checksum(ph, b[hl:]); ck != 0 {
			t.Errorf("%s: checksum over the message %#x, want 0", tc.src, ck)
		}
	}
}
