package shaper

import (
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
// receiver-side throughput in bit/s. A server still closing the previous
// test answers "busy" (or, when the previous test's teardown races the new
// control connection, resets it); the client then tries again.
func (l lab) iperf(t testing.TB, dst string, port int, extra ...string) float64 {
	t.Helper()
	args := append([]string{"netns", "exec", l.node, "iperf3", "-J", "-c", dst, "-p", strconv.Itoa(port)}, extra...)
	for try := 0; ; try++ {
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
		if (strings.Contains(r.Error, "busy") || strings.Contains(r.Error, "unable to receive control message")) && try < 20 {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		if r.Error != "" {
			t.Fatalf("iperf3 %s: %s", strings.Join(args, " "), r.Error)
		}
		return r.End.SumReceived.BitsPerSecond
	}
}

func (l lab) addTargets(t testing.TB) {
	t.Helper()
	nsRun(t, l.inet, "ip", "addr", "add", labDst4+"/32", "dev", "lo")
	nsRun(t, l.inet, "ip", "-6", "addr", "add", labDst6+"/128", "dev", "lo", "nodad")
}
