package shaper

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireIperf3 skips traffic tests on hosts without iperf3.
func requireIperf3(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("traffic test: needs iperf3 (apt-get install iperf3)")
	}
}

// iperfServer runs `iperf3 -s` in the internet namespace on addr:port;
// UDP needs the server bound to the address the client targets, so the
// replies come from it.
func (l lab) iperfServer(t testing.TB, addr string, port int) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", l.inet, "iperf3", "-s", "-B", addr, "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for range 100 {
		out, _ := exec.Command("ip", "netns", "exec", l.inet, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port)).Output()
		if strings.Contains(string(out), addr) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("iperf3 server on [%s]:%d did not start listening", addr, port)
}

// iperf runs an iperf3 client in the node namespace and returns the
// receiver-side throughput in bit/s.
func (l lab) iperf(t testing.TB, dst string, port int, extra ...string) float64 {
	t.Helper()
	args := append([]string{"netns", "exec", l.node, "iperf3", "-J", "-c", dst, "-p", strconv.Itoa(port)}, extra...)
	out, _ := exec.Command("ip", args...).Output() // iperf3 -J reports errors in the JSON
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("iperf3 %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if r.Error != "" {
		t.Fatalf("iperf3 %s: %s", strings.Join(args, " "), r.Error)
	}
	return r.End.SumReceived.BitsPerSecond
}

func (l lab) addTargets(t testing.TB) {
	t.Helper()
	nsRun(t, l.inet, "ip", "addr", "add", labDst4+"/32", "dev", "lo")
	nsRun(t, l.inet, "ip", "-6", "addr", "add", labDst6+"/128", "dev", "lo", "nodad")
}

// TestShapingWithIperf3 measures with real packets: the throttled ports get
// at most 1.1× the rate, SSH and an unthrottled port keep at least 0.8 of
// the throughput they had unshaped. Those two streams are paced at
// 500 Mbit/s (-b) so the ratio is about shaping, not CPU noise.
func TestShapingWithIperf3(t *testing.T) {
	requireRoot(t)
	requireIperf3(t)
	if testing.Short() {
		t.Skip("traffic test: skipped in -short mode")
	}
	ctx := context.Background()
	l := newLab(t, 1)
	l.addTargets(t)
	l.iperfServer(t, labDst4, 443)
	l.iperfServer(t, labDst6, 443)
	l.iperfServer(t, labDst4, 22)
	l.iperfServer(t, labDst4, 5201)
	const secs = "3"
	paced := []string{"-t", secs, "-b", "500M"}

	unshaped22 := l.iperf(t, labDst4, 22, paced...)
	unshaped5201 := l.iperf(t, labDst4, 5201, paced...)

	s := l.open(t)
	spec := labSpec()
	if _, err := s.Apply(ctx, mustPlan(t, spec), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	limit := 1.1 * float64(spec.Rate)
	for _, c := range []struct {
		name string
		dst  string
		args []string
	}{
		{"tcp/443 ipv4", labDst4, []string{"-t", secs}},
		{"tcp/443 ipv6", labDst6, []string{"-t", secs}},
		{"udp/443 ipv4 at 20 Mbit/s", labDst4, []string{"-t", secs, "-u", "-b", "20M"}},
	} {
		got := l.iperf(t, c.dst, 443, c.args...)
		t.Logf("%s throttled to %d bit/s: received %.3f Mbit/s", c.name, spec.Rate, got/1e6)
		if got > limit || got == 0 {
			t.Errorf("%s: received %.3f Mbit/s, want (0, %.3f]", c.name, got/1e6, limit/1e6)
		}
	}
	for _, c := range []struct {
		port     int
		unshaped float64
	}{{22, unshaped22}, {5201, unshaped5201}} {
		got := l.iperf(t, labDst4, c.port, paced...)
		t.Logf("tcp/%d paced at 500M: unshaped %.1f Mbit/s, shaped %.1f Mbit/s (ratio %.3f)", c.port, c.unshaped/1e6, got/1e6, got/c.unshaped)
		if got < 0.8*c.unshaped {
			t.Errorf("tcp/%d: %.1f Mbit/s with the shaper, %.1f without: below 0.8", c.port, got/1e6, c.unshaped/1e6)
		}
	}
	in, err := s.Inspect(ctx, labDev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("throttled class: %+v", in.ThrottledStats)
	if in.ThrottledStats.Packets == 0 || in.ThrottledStats.Drops == 0 {
		t.Errorf("throttled class stats %+v: want packets and drops from the UDP flood", in.ThrottledStats)
	}
}
