package synwatch

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/egressguard/egressguard/detect/account"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

var (
	hostMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	gwMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// frameSpec describes a test frame; serialize builds it with gopacket.
type frameSpec struct {
	v6       bool
	vlan     bool
	udp      bool
	icmp     bool
	src, dst string
	sport    uint16
	dport    uint16
	flags    string // TCP flags: any of "S", "A", "R", "F"
	fragOff  uint16
	payload  int  // TCP payload bytes
	qinq     bool // an 802.1ad service tag outside the 802.1Q tag
	dstOpts  bool // IPv6: a Destination Options header before L4
	ipOpts   bool // IPv4: a Router Alert option and padding (IHL 7)
}

func (f frameSpec) serialize(t testing.TB) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: hostMAC, DstMAC: gwMAC, EthernetType: layers.EthernetTypeIPv4}
	var ls []gopacket.SerializableLayer
	ls = append(ls, eth)
	l3type := layers.EthernetTypeIPv4
	if f.v6 {
		l3type = layers.EthernetTypeIPv6
	}
	if f.qinq {
		eth.EthernetType = layers.EthernetTypeQinQ
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 200, Type: layers.EthernetTypeDot1Q})
	}
	if f.vlan {
		if !f.qinq {
			eth.EthernetType = layers.EthernetTypeDot1Q
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 100, Type: l3type})
	} else {
		eth.EthernetType = l3type
	}
	proto := layers.IPProtocolTCP
	if f.udp {
		proto = layers.IPProtocolUDP
	}
	if f.icmp {
		proto = layers.IPProtocolICMPv4
	}
	var nl gopacket.NetworkLayer
	if f.v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto,
			SrcIP: net.ParseIP(f.src), DstIP: net.ParseIP(f.dst)}
		nl, ls = ip, append(ls, ip)
		if f.dstOpts {
			ip.NextHeader = layers.IPProtocolIPv6Destination
			do := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 1, OptionData: make([]byte, 4)}}}
			do.NextHeader = proto
			ls = append(ls, do)
		}
	} else {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, FragOffset: f.fragOff,
			SrcIP: net.ParseIP(f.src).To4(), DstIP: net.ParseIP(f.dst).To4()}
		if f.ipOpts {
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}},
				{OptionType: 1, OptionLength: 1}, {OptionType: 1, OptionLength: 1}, {OptionType: 1, OptionLength: 1}, {OptionType: 0, OptionLength: 1}}
		}
		nl, ls = ip, append(ls, ip)
	}
	if f.icmp {
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1}, gopacket.Payload(make([]byte, 56)))
	} else if f.udp {
		u := &layers.UDP{SrcPort: layers.UDPPort(f.sport), DstPort: layers.UDPPort(f.dport)}
		_ = u.SetNetworkLayerForChecksum(nl)
		ls = append(ls, u, gopacket.Payload(make([]byte, 40)))
	} else {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(f.sport), DstPort: layers.TCPPort(f.dport), Window: 65535,
			SYN: strings.Contains(f.flags, "S"), ACK: strings.Contains(f.flags, "A"),
			RST: strings.Contains(f.flags, "R"), FIN: strings.Contains(f.flags, "F"),
			Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
		_ = tcp.SetNetworkLayerForChecksum(nl)
		ls = append(ls, tcp, gopacket.Payload(make([]byte, f.payload)))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// How the kernel filter treats a frame.
const (
	passAlways = iota
	passData   // 1 in DataEvery
	passNever
)

// frameCases are the classification table shared by the decode test and the
// kernel filter test: want is the kind when the frame goes in direction out.
var frameCases = []struct {
	name string
	f    frameSpec
	out  bool
	want kind
	pass int
}{
	{"syn out v4", frameSpec{src: "10.0.0.1", dst: "198.18.0.9", sport: 40000, dport: 443, flags: "S"}, true, kindSynOut, passAlways},
	{"syn out v6", frameSpec{v6: true, src: "fd00::1", dst: "2001:db8:ff::9", sport: 40000, dport: 80, flags: "S"}, true, kindSynOut, passAlways},
	{"syn out vlan v4", frameSpec{vlan: true, src: "10.0.0.1", dst: "198.18.0.9", sport: 40000, dport: 80, flags: "S"}, true, kindSynOut, passAlways},
	{"syn out vlan v6", frameSpec{vlan: true, v6: true, src: "fd00::1", dst: "2001:db8:ff::9", sport: 40000, dport: 443, flags: "S"}, true, kindSynOut, passAlways},
	{"synack in v4", frameSpec{src: "198.18.0.9", dst: "10.0.0.1", sport: 443, dport: 40000, flags: "SA"}, false, kindSynAckIn, passAlways},
	{"synack in v6", frameSpec{v6: true, src: "2001:db8:ff::9", dst: "fd00::1", sport: 80, dport: 40000, flags: "SA"}, false, kindSynAckIn, passAlways},
	{"rst out", frameSpec{src: "10.0.0.1", dst: "198.18.0.9", sport: 40000, dport: 443, flags: "R"}, true, kindRstOut, passAlways},
	{"rst-ack out", frameSpec{src: "10.0.0.1", dst: "198.18.0.9", sport: 40000, dport: 443, flags: "RA"}, true, kindCloseOut, passAlways}, // abortive close, not the kernel's reset of a stray SYN-ACK
	{"udp out 443", frameSpec{udp: true, src: "10.0.0.1", dst: "198.18.0.9", sport: 5000, dport: 443}, true, kindUDPOut, passAlways},
	{"udp in from 443", frameSpec{udp: true, v6: true, src: "2001:db8:ff::9", dst: "fd00::1", sport: 443, dport: 5000}, false, kindUDPIn, passAlways},
	{"syn in", frameSpec{src: "198.18.0.9", dst: "10.0.0.1", sport: 40000, dport: 22, flags: "S"}, false, kindNone, passData},
	{"synack out", frameSpec{src: "10.0.0.1", dst: "198.18.0.9", sport: 22, dport: 40000, flags: "SA"}, true, kindNone, passData},
	{"ack out", frameSpec{src: "10.0.0.1", dst: "198.18.0.9", sport: 40000, dport: 443, flags: "A"}, true, kindNone, passData},
	{"fin out", frameSpec{src: "10.0.0.1", dst: "198.18.0.9", sport: 40000, dport: 443, flags: "FA"}, true, kindCloseOut, passAlways},
	{"rst in", frameSpec{src: "198.18.0.9", dst: "10.0.0.1", sport: 443, dport: 40000, flags: "R"}, false, kindNone, passData},
	{"udp out 53", frameSpec{udp: true, src: "10.0.0.1", dst: "198.18.0.9", sport: 5000, dport: 53}, true, kindNone, passAlways},
	{"udp in to 443", frameSpec{udp: true, src: "198.18.0.9", dst: "10.0.0.1", sport: 5000, dport: 443}, false, kindNone, passAlways},
	{"syn out v6 dstopts", frameSpec{v6: true, dstOpts: true, src: "fd00::1", dst: "2001:db8:ff::9", sport: 40000, dport: 443, flags: "S"}, true, kindSynOut, passAlways},
	{"synack in v6 dstopts", frameSpec{v6: true, dstOpts: true, src: "2001:db8:ff::9", dst: "fd00::1", sport: 443, dport: 40000, flags: "SA"}, false, kindSynAckIn, passAlways},
	{"syn out v4 options", frameSpec{ipOpts: true, src: "10.0.0.1", dst: "198.18.0.9", sport: 40000, dport: 80, flags: "S"}, true, kindSynOut, passAlways},
	{"syn out qinq v4", frameSpec{qinq: true, vlan: true, src: "10.0.0.1", dst: "198.18.0.9", sport: 40000, dport: 80, flags: "S"}, true, kindSynOut, passAlways},
	{"syn out qinq v6 dstopts", frameSpec{qinq: true, vlan: true, v6: true, dstOpts: true, src: "fd00::1", dst: "2001:db8:ff::9", sport: 40000, dport: 443, flags: "S"}, true, kindSynOut, passAlways},
	{"udp out 443 v6 dstopts", frameSpec{udp: true, v6: true, dstOpts: true, src: "fd00::1", dst: "2001:db8:ff::9", sport: 5000, dport: 443}, true, kindUDPOut, passAlways},
	{"fragment out", frameSpec{udp: true, src: "10.0.0.1", dst: "198.18.0.9", sport: 5000, dport: 443, fragOff: 100}, true, kindNone, passNever},
	{"icmp echo out", frameSpec{icmp: true, src: "10.0.0.1", dst: "198.18.0.9"}, true, kindNone, passAlways},
}

func TestDecodeClassifies(t *testing.T) {
	d := newDecoder(DefaultPorts)
	for _, tc := range frameCases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.f.serialize(t)
			o, ok := d.decode(b, tc.out)
			if tc.pass == passNever {
				if ok {
					t.Fatalf("decode = %+v, want rejected", o)
				}
				return
			}
			if !ok || o.kind != tc.want {
				t.Fatalf("decode = %+v %v, want kind %d", o, ok, tc.want)
			}
			if o.dataRate != (tc.pass == passData) {
				t.Errorf("dataRate %v, want %v: user space must weigh what the filter sampled", o.dataRate, tc.pass == passData)
			}
			if tc.f.icmp && o.Proto != account.ProtoICMP {
				t.Errorf("proto %v, want icmp", o.Proto)
			}
			if o.Src != netip.MustParseAddr(tc.f.src) || o.Dst != netip.MustParseAddr(tc.f.dst) || o.DstPort != tc.f.dport || o.Length == 0 || o.Length > uint32(len(b)) {
				t.Errorf("decode = %+v, want %s → %s:%d", o, tc.f.src, tc.f.dst, tc.f.dport)
			}
			if !o.hasSrcMAC || net.HardwareAddr(o.srcMAC[:]).String() != hostMAC.String() {
				t.Errorf("src MAC = %x", o.srcMAC)
			}
			// Truncated to the snaplen the filter returns, it still decodes.
			if len(b) > Snaplen {
				if o2, ok := d.decode(b[:Snaplen], tc.out); !ok || o2 != o {
					t.Errorf("truncated decode = %+v %v", o2, ok)
				}
			}
		})
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	d := newDecoder(DefaultPorts)
	frames := make([][]byte, len(frameCases))
	for i, tc := range frameCases {
		frames[i] = tc.f.serialize(t)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i, b := range frames {
			d.decode(b, frameCases[i].out)
		}
	})
	if allocs != 0 {
		t.Errorf("decode allocates %.1f times per %d frames", allocs, len(frames))
	}
}

func TestDecodeGarbage(t *testing.T) {
	d := newDecoder(DefaultPorts)
	for _, b := range [][]byte{nil, {1, 2, 3}, make([]byte, 14), make([]byte, 60)} {
		if o, ok := d.decode(b, true); ok {
			t.Errorf("decode(%x) = %+v", b, o)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, tc := range frameCases {
		f.Add(tc.f.serialize(f), tc.out)
	}
	d := newDecoder(DefaultPorts)
	f.Fuzz(func(t *testing.T, b []byte, out bool) {
		d.decode(b, out)
	})
}

func TestFilterGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		uplink uint32
		ignore []uint32
		every  uint32
	}{{"filter-default.golden", 0, nil, 1}, {"filter-sampled.golden", 0, nil, 64}, {"filter-bridge-ports.golden", 2, []uint32{1, 3}, 1}} {
		prog, err := Filter(FilterSpec{Uplink: tc.uplink, Ignore: tc.ignore, SampleEvery: tc.every})
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		for i, ins := range prog {
			fmt.Fprintf(&sb, "%3d %v\n", i, ins)
		}
		path := filepath.Join("testdata", tc.name)
		if *update {
			if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if sb.String() != string(want) {
			t.Errorf("%s differs (run with -update):\n%s", tc.name, sb.String())
		}
	}
}

func TestFilterRejects(t *testing.T) {
	if _, err := Filter(FilterSpec{Uplink: 2, Ignore: make([]uint32, MaxIgnored+1), SampleEvery: 1}); err == nil {
		t.Error("too many ignored interfaces accepted")
	}
	if _, err := Filter(FilterSpec{}); err == nil {
		t.Error("sample_every 0 accepted")
	}
}
