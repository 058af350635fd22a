package replay

import (
	"encoding/binary"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/capfile"
	"github.com/egressguard/egressguard/detect/evidence"
	"github.com/egressguard/egressguard/detect/packet"
)

// synFrame is an Ethernet, IPv4 and TCP SYN from src to dst:80.
func synFrame(src, dst netip.Addr, sport uint16) []byte {
	f := make([]byte, 54)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], 40)
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	tcp[12], tcp[13] = 5<<4, 0x02
	return f
}

// TestEvidenceWeights replays an evidence bundle's pcapng: 250 sampled SYNs
// a second, each standing for 16 (sample_every=16), are a 4,000 SYN/s
// flood from a VM's port and its source, with no --local (each packet
// carries its direction and port); the same packets unweighted are 250/s
// and clean.
func TestEvidenceWeights(t *testing.T) {
	src := netip.MustParseAddr("198.19.128.11")
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, every := range []uint32{16, 0} {
		var ps []evidence.Packet
		for i := range 500 {
			at := start.Add(time.Duration(i) * 4 * time.Millisecond)
			dst := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
			f := synFrame(src, dst, uint16(1024+i))
			// The VM's frame as its bridge port received it, and its copy
			// leaving by the uplink.
			ps = append(ps,
				evidence.Packet{At: at, Data: f, Interface: "vnet1", BridgePort: true, Direction: packet.DirIn, SampleEvery: every},
				evidence.Packet{At: at, Data: f, Direction: packet.DirOut, SampleEvery: every})
		}
		w, err := evidence.NewWriter(evidence.Options{Dir: t.TempDir(), MaxBundleBytes: 4 << 20, MaxBundles: 1, Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		dir, err := w.Write(evidence.Bundle{Verdict: detect.Verdict{Interface: "up0", State: detect.StateFlood},
			LinkType: layers.LinkTypeEthernet, Filtered: true, Packets: ps})
		if err != nil {
			t.Fatal(err)
		}
		r, err := capfile.Open(filepath.Join(dir, evidence.PcapFile))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := Run(r, shipped(), nil)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := []string{}
		if every == 16 {
			want = []string{"interface", "node", "port vnet1", "source 198.19.128.11"}
		}
		if got := slices.Sorted(slices.Values(sum.Flooded)); !slices.Equal(got, want) {
			t.Errorf("sample_every=%d: flooded %v, want %v; verdicts:\n%s", every, sum.Flooded, want, describe(sum))
		}
		if every == 16 && sum.Weighted != 16*1000 {
			t.Errorf("weighted %d packets, want %d", sum.Weighted, 16*1000)
		}
	}
}
