package packet_test

import (
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/egressguard/egressguard/detect/capfile"
	"github.com/egressguard/egressguard/detect/packet"
	"github.com/egressguard/egressguard/internal/pcaps"
)

func describe(p *packet.Packet, err error) string {
	return fmt.Sprintf("v%d %s>%s proto=%d %d>%d flags=%#x l4=%v@%d frag=%d/%d ext=%d opts=%d/%v vlan=%v mpls=%d dir=%d err=%v",
		p.IPVersion, p.Src, p.Dst, p.Proto, p.SrcPort, p.DstPort, p.TCPFlags, p.HasL4, p.L4Offset, p.Frag, p.FragOffset,
		p.ExtHeaders, p.IPv4Options, p.BadIPv4Option, p.VLANs[:min(p.NumVLANs, packet.MaxVLANs)], p.MPLS, p.Direction, err)
}

// TestPublicDecoderEdges decodes packets of the public decoder samples and
// compares with what tcpdump (4.99) shows for them; each row says why.
func TestPublicDecoderEdges(t *testing.T) {
	dir := filepath.Join(pcaps.Dir(t), "decoder_edge")
	for _, tc := range []struct {
		file string
		n    int
		want string
		why  string
	}{
		{"sv_ipopts-esec_syn-with-ipv4-option.pcap", 1, "v4 1.2.3.4>4.5.6.7 proto=6 20>80 flags=0x2 l4=true@38 frag=0/0 ext=0 opts=4/false vlan=[] mpls=0 dir=0 err=<nil>",
			"IHL 6: the SYN starts at 14+24, not 14+20"},
		{"sv_bug-7414_ip_secopt.pcap", 3, "v4 30.30.30.30>20.20.20.20 proto=17 5060>5060 flags=0x0 l4=true@46 frag=0/0 ext=0 opts=12/true vlan=[] mpls=0 dir=0 err=<nil>",
			"a Security option then one whose length (53) runs past the header: flagged, and IHL still finds UDP"},
		{"tcpdump_IGMP_V2.pcap", 2, "v4 192.168.1.64>239.255.255.250 proto=2 0>0 flags=0x0 l4=false@38 frag=0/0 ext=0 opts=4/false vlan=[] mpls=0 dir=0 err=<nil>",
			"Router Alert option (IHL 6) before IGMP"},
		{"sv_defrag_frag-eth-vlan-ip-tcp-syn.pcap", 1, "v4 1.1.1.1>2.2.2.2 proto=6 0>0 flags=0x0 l4=false@38 frag=1/0 ext=0 opts=0/false vlan=[6] mpls=0 dir=0 err=frame ends inside a header",
			"802.1Q, first fragment with only 8 bytes of TCP: no flags to read, so no SYN is counted"},
		{"sv_defrag_frag-eth-vlan-ip-tcp-syn.pcap", 2, "v4 1.1.1.1>2.2.2.2 proto=6 0>0 flags=0x0 l4=false@38 frag=2/8 ext=0 opts=0/false vlan=[6] mpls=0 dir=0 err=<nil>", "later fragment"},
		{"zeek_ipv4_fragmented-syn.pcap", 1, "v4 192.168.1.100>10.0.0.5 proto=6 12345>80 flags=0x2 l4=true@34 frag=1/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>",
			"first fragment holds 24 of the 40 TCP header bytes: ports and flags are there (tcpdump prints Flags [S])"},
		{"zeek_ipv4_fragmented-syn.pcap", 2, "v4 192.168.1.100>10.0.0.5 proto=6 0>0 flags=0x0 l4=false@34 frag=2/24 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "offset 24"},
		{"chrissanders_ip_frag_source.pcapng", 2, "v4 10.10.0.3>192.168.0.128 proto=1 0>0 flags=0x0 l4=false@34 frag=2/1480 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "tcpdump 'ip-proto-1'"},
		{"chrissanders_ipv6_fragments.pcapng", 1, "v6 2001:db8:1:2::1003>2001:db8:1:2::1000 proto=58 0>0 flags=0x0 l4=true@62 frag=1/0 ext=1 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "IPv6 fragment header, first fragment: ICMPv6 behind it"},
		{"chrissanders_ipv6_fragments.pcapng", 2, "v6 2001:db8:1:2::1003>2001:db8:1:2::1000 proto=58 0>0 flags=0x0 l4=false@62 frag=2/1448 ext=1 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "later IPv6 fragment"},
		{"libpcap_ipv6_ext_headers.pcap", 1, "v6 2001:db8::1>2001:db8::2 proto=17 12345>54321 flags=0x0 l4=true@854 frag=0/0 ext=100 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>",
			"100 extension headers, then UDP 12345 > 54321"},
		{"zeek_ipv6-hbh-routing0.pcap", 1, "v6 2001:4f8:4:7:2e0:81ff:fe52:ffff>2001:4f8:4:7:2e0:81ff:fe52:9a6b proto=17 53>53 flags=0x0 l4=true@102 frag=0/0 ext=2 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "HBH then type-0 routing"},
		{"zeek_ipv6-mobility-dst-opts.pcap", 1, "v6 2001:4f8:4:7:2e0:81ff:fe52:ffff>2001:4f8:4:7:2e0:81ff:fe52:9a6b proto=17 30000>13000 flags=0x0 l4=true@78 frag=0/0 ext=1 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "destination options before UDP"},
		{"zeek_ipv6-mobility-dst-opts.pcap", 2, "v6 2001:4f8:4:7:2e0:81ff:fe52:ffff>2001:4f8:4:7:2e0:81ff:fe52:9a6b proto=60 0>0 flags=0x0 l4=false@0 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=frame ends inside a header",
			"truncated inside the destination options header ('[|dstopt]')"},
		{"tcpdump_ipv6-routing-header.pcap", 3, "v6 2200::244:212:3fff:feae:22f7>2200::240:2:0:0:4 proto=17 5645>5642 flags=0x0 l4=true@78 frag=0/0 ext=1 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "type-0 routing header, 1 segment"},
		{"tcpdump_ipv6-srh-ext-header.pcap", 1, "v6 a:b:c:12::1>a:b:c:2::f1:0 proto=41 0>0 flags=0x0 l4=false@94 frag=0/0 ext=1 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>",
			"segment routing header, then an encapsulated IPv6 packet (41): the walk stops at the tunnel"},
		{"tcpdump_ipv6_jumbogram_1.pcap", 1, "v6 2200::244:212:3fff:feae:22f7>2200::240:2:0:0:4 proto=58 0>0 flags=0x0 l4=true@62 frag=0/0 ext=1 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "jumbogram: payload length 0, HBH Jumbo Payload"},
		{"tcpdump_bigtcp-ipv6-hbh.pcap", 1, "v6 2604:1380:4091:ce00::d>2604:1380:4091:ce00::b proto=6 41851>43913 flags=0x18 l4=true@62 frag=0/0 ext=1 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "BIG TCP: HBH jumbo then TCP [P.]"},
		{"tcpdump_gso-ipv4.pcap", 1, "v4 10.25.132.11>10.25.132.13 proto=6 38407>39701 flags=0x18 l4=true@34 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "GSO super-segment"},
		{"tcpdump_802.1ad_QinQ.pcap", 1, "v0 invalid IP>invalid IP proto=0 0>0 flags=0x0 l4=false@0 frag=0/0 ext=0 opts=0/false vlan=[200 2001] mpls=0 dir=0 err=<nil>", "802.1ad 200 then 802.1Q 2001, ARP: not IP"},
		{"zeek_http-qinq-0.pcap", 1, "v4 141.142.228.5>192.150.187.43 proto=6 59856>80 flags=0x2 l4=true@42 frag=0/0 ext=0 opts=0/false vlan=[0 0] mpls=0 dir=0 err=<nil>", "two 802.1Q tags, VLAN 0"},
		{"zeek_vlan-qinqinq.pcap", 1, "v4 141.142.228.5>192.150.187.43 proto=6 59856>80 flags=0x2 l4=true@46 frag=0/0 ext=0 opts=0/false vlan=[30 20 10] mpls=0 dir=0 err=<nil>", "three tags"},
		{"tcpdump_LINKTYPE_IPV4.pcap", 1, "v4 192.168.1.100>9.9.9.9 proto=17 12345>53 flags=0x0 l4=true@20 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "link type 228"},
		{"tcpdump_LINKTYPE_IPV6.pcap", 1, "v6 2001:db8::1>2620:fe::9 proto=17 12345>53 flags=0x0 l4=true@40 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "link type 229"},
		{"tcpdump_LINKTYPE_RAW_ipv4.pcap", 1, "v4 192.168.1.100>9.9.9.9 proto=17 12345>53 flags=0x0 l4=true@20 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "link type 101"},
		{"zeek_tcp_payload-syn.pcap", 1, "v4 192.168.0.1>192.168.0.2 proto=6 80>80 flags=0x2 l4=true@20 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "raw IP, a SYN with 100 bytes of payload"},
		{"tcpdump_accecn_handshake.pcap", 1, "v4 31.133.146.248>66.228.43.12 proto=6 16433>80 flags=0x1c2 l4=true@34 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "AccECN SYN: AE+CWR+ECE+SYN, still a SYN without ACK"},
		{"tcpdump_tcp_all_eight_flags.pcap", 1, "v4 10.0.0.2>10.128.0.2 proto=6 6260>80 flags=0xff l4=true@34 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "all eight flags"},
		{"tcpdump_tcp-handshake-nano.pcap", 2, "v4 137.116.81.94>131.155.215.69 proto=6 80>46656 flags=0x12 l4=true@36 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=1 err=<nil>", "SLL v1, 'In', nanosecond pcap"},
		{"sv_decode-sll2-02.pcap", 1, "v4 192.168.1.253>192.168.1.21 proto=6 56478>80 flags=0x2 l4=true@40 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=2 err=<nil>", "SLL2, 'Out'"},
		{"zeek_linux_dlt_sll2.pcap", 3, "v6 fe80::8c36:6ff:fe44:acaf>fe80::8c36:6ff:fe44:acaf proto=58 0>0 flags=0x0 l4=true@60 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=1 err=<nil>", "SLL2 on lo, ICMPv6"},
		{"zeek_nflog-http.pcap", 4, "v4 93.184.216.34>10.0.2.15 proto=6 80>49762 flags=0x12 l4=true@120 frag=0/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=<nil>", "NFLOG TLVs before the payload"},
		{"ndpi_ip_fragmented_garbage.pcap", 1, "v4 10.0.0.2>10.128.0.2 proto=6 24102>10792 flags=0x23 l4=false@34 frag=1/0 ext=0 opts=0/false vlan=[] mpls=0 dir=0 err=malformed header",
			"first fragment of TCP garbage: data offset below 5 words, so no flags are trusted"},
	} {
		t.Run(fmt.Sprintf("%s#%d", tc.file, tc.n), func(t *testing.T) {
			r, err := capfile.Open(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var rec capfile.Record
			for range tc.n {
				if err := r.Next(&rec); err != nil {
					t.Fatal(err)
				}
			}
			var p packet.Packet
			err = packet.Decode(rec.Link, rec.Data, &p)
			if got := describe(&p, err); got != tc.want {
				t.Errorf("%s\n got %s\nwant %s", tc.why, got, tc.want)
			}
		})
	}
}

// TestPublicCapturesDecode walks every packet of every public capture.
func TestPublicCapturesDecode(t *testing.T) {
	for _, c := range pcaps.All(t) {
		r, err := capfile.Open(c.Path)
		if err != nil {
			t.Fatal(err)
		}
		var rec capfile.Record
		var p packet.Packet
		for {
			err := r.Next(&rec)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := packet.Decode(rec.Link, rec.Data, &p); err == packet.ErrUnsupportedLink {
				t.Errorf("%s packet %d: %v", c.Name, rec.Number, err)
			}
		}
		r.Close()
	}
}
