package e2e

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/internal/lab"
)

var fnmRuns = flag.Int("fastnetmon-runs", 0, "run TestVsFastNetMon with this many runs of the node SYN flood (scripts/bench-vs-fastnetmon.sh)")

// fnmConfig is FastNetMon CE's configuration for the lab, from its packaged
// defaults (/etc/fastnetmon.conf) with what the comparison needs: AF_PACKET
// on the uplink, a per-host pps ban (threshold_pps, its default 20000) on
// its fastest averaging (average_calculation_time 1; packaged 5), the lab's
// node and VM networks as its own, a notify script that stamps each ban,
// no usage report, no API, every file under dir.
func fnmConfig(dir string) string {
	return fmt.Sprintf(`logging_level = info
disable_usage_report = on
enable_ban = on
enable_ban_ipv6 = on
process_incoming_traffic = on
process_outgoing_traffic = on
ban_time = 1900
unban_only_if_attack_finished = on
networks_list_path = %[1]s/networks_list
white_list_path = %[1]s/networks_whitelist
check_period = 1
enable_connection_tracking = on
ban_for_pps = on
ban_for_bandwidth = off
ban_for_flows = off
threshold_pps = 20000
threshold_mbps = 1000
threshold_flows = 3500
mirror_afpacket = on
mirror_af_packet_custom_sampling_rate = 1
mirror_af_packet_fanout_mode = cpu
interfaces = %[2]s
average_calculation_time = 1
speed_calculation_delay = 1
notify_script_path = %[1]s/notify.sh
collect_attack_pcap_dumps = off
redis_enabled = off
mongodb_enabled = off
exabgp = off
gobgp = off
influxdb = off
graphite = off
monitor_local_ip_addresses = on
pid_path = %[1]s/fastnetmon.pid
cli_stats_file_path = %[1]s/fastnetmon.dat
cli_stats_ipv6_file_path = %[1]s/fastnetmon_ipv6.dat
enable_api = off
`, dir, lab.Uplink)
}

// cpuTicks is a process's user+system time in clock ticks (/proc/PID/stat).
func cpuTicks(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return u + k
}

func vmHWM(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "?"
}

// agentVerdict is the time of the agent's first flood verdict after since:
// a key verdict (sub-second) or the interface verdict.
func agentVerdict(log string, since time.Time) (time.Time, string) {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Time  time.Time `json:"time"`
			Msg   string    `json:"msg"`
			State string    `json:"state"`
			Key   string    `json:"key"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Time.Before(since) || l.State != "flood" {
			continue
		}
		if l.Msg == "key verdict" || l.Msg == "verdict" {
			return l.Time, l.Key
		}
	}
	return time.Time{}, ""
}

// fnmBan is the time of FastNetMon's first ban after since, from the lines
// its notify script appends: "UNIXNANO IP DIRECTION PPS ACTION".
func fnmBan(path string, since time.Time) (time.Time, string) {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[4] != "ban" {
			continue
		}
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		if t := time.Unix(0, ns); !t.Before(since) {
			return t, f[1] + " " + f[2]
		}
	}
	return time.Time{}, ""
}

type benchResult struct {
	scenario             string
	agentAfter, fnmAfter time.Duration // 0: none
	agentWhat, fnmWhat   string
	agentCPU, fnmCPU     float64 // share of one core during the scenario
	offered              string  // what the generators reported
	agentRSS, fnmRSS     string  // peak resident set (VmHWM) at the end
}

// TestVsFastNetMon runs FastNetMon CE and the agent (observe mode, so
// neither sees traffic the other throttled) side by side in the lab's node
// namespace on the same scenarios, and prints time to verdict / ban and CPU
// share for each. Opt-in: scripts/bench-vs-fastnetmon.sh.
func TestVsFastNetMon(t *testing.T) {
	if *fnmRuns <= 0 {
		t.Skip("opt-in: -fastnetmon-runs N (scripts/bench-vs-fastnetmon.sh)")
	}
	if _, err := exec.LookPath("fastnetmon"); err != nil {
		t.Skip("fastnetmon not installed (scripts/bench-vs-fastnetmon.sh installs it)")
	}
	var results []benchResult
	type scenario struct {
		name  string
		setup func(e *env)
		run   func(e *env) []*lab.Proc
		flood bool
	}
	scenarios := []scenario{
		{name: "healthy upload to 443", setup: func(e *env) {
			if _, err := e.lab.IperfServer(e.ctx, 443); err != nil {
				t.Fatal(err)
			}
		}, run: func(e *env) []*lab.Proc {
			p, err := e.lab.Start(e.lab.Node, "iperf3", "-c", lab.Dst4.String(), "-p", "443", "-t", "6")
			if err != nil {
				t.Fatal(err)
			}
			return []*lab.Proc{p}
		}},
		{name: "spoofed-source VM flood", flood: true, setup: func(e *env) { e.arp(e.lab.VMs[0]) }, run: func(e *env) []*lab.Proc {
			return []*lab.Proc{e.flood(e.lab.VMs[0].NS, 6*time.Second, "-ports", "443", "-rate", "25000", "-spoof", "10.77.0.0/16")}
		}},
		{name: "spoofed VM flood, ~1M distinct sources (10.0.0.0/8 at full speed)", flood: true, setup: func(e *env) { e.arp(e.lab.VMs[0]) }, run: func(e *env) []*lab.Proc {
			return []*lab.Proc{e.flood(e.lab.VMs[0].NS, 12*time.Second, "-ports", "443", "-spoof", "10.0.0.0/8")}
		}},
		{name: "busy node (VM 25k SYN/s to :80 beside the node's crawler)", flood: true, setup: func(e *env) {
			e.sink("443")
		}, run: func(e *env) []*lab.Proc {
			c, err := e.lab.Start(e.lab.Node, e.tools.Crawler, "-ports", "443", "-duration", "6s")
			if err != nil {
				t.Fatal(err)
			}
			return []*lab.Proc{c, e.flood(e.lab.VMs[0].NS, 6*time.Second, "-ports", "80", "-rate", "25000")}
		}},
	}
	for i := range *fnmRuns {
		scenarios = append(scenarios, scenario{name: fmt.Sprintf("node raw-socket SYN flood, run %d", i+1), flood: true,
			run: func(e *env) []*lab.Proc { return []*lab.Proc{e.flood(e.lab.Node, 6*time.Second)} }})
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir() // before the lab: removed after the lab has ended FastNetMon
			e := newEnv(t, 1, func(c *config.Config) { c.Mode = config.ModeObserve })
			nets := lab.NodeAddr4.String() + "/30\n" + lab.VMNet4.String() + "\n"
			for name, body := range map[string]string{
				"networks_list": nets, "networks_whitelist": "",
				"notify.sh":       "#!/bin/sh\necho \"$(date +%s%N) $1 $2 $3 $4\" >> " + dir + "/bans\n",
				"fastnetmon.conf": fnmConfig(dir),
			} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if sc.setup != nil {
				sc.setup(e)
			}
			fnm, err := e.lab.Start(e.lab.Node, "fastnetmon", "--configuration_file", filepath.Join(dir, "fastnetmon.conf"),
				"--log_file", filepath.Join(dir, "fastnetmon.log"), "--disable_pid_logic")
			if err != nil {
				t.Fatal(err)
			}
			e.startAgent()
			time.Sleep(3 * time.Second) // FastNetMon reads its networks and opens AF_PACKET
			select {
			case <-fnm.Done():
				b, _ := os.ReadFile(filepath.Join(dir, "fastnetmon.log"))
				t.Fatalf("fastnetmon exited: %s\n%s", fnm.Output(), b)
			default:
			}
			a0, f0 := cpuTicks(e.agent.Proc.Pid()), cpuTicks(fnm.Pid())
			start := time.Now()
			procs := sc.run(e)
			for _, p := range procs {
				_ = p.Wait(e.ctx)
			}
			wall := time.Since(start).Seconds()
			a1, f1 := cpuTicks(e.agent.Proc.Pid()), cpuTicks(fnm.Pid())
			time.Sleep(500 * time.Millisecond)
			r := benchResult{scenario: sc.name, agentCPU: (a1 - a0) / 100 / wall, fnmCPU: (f1 - f0) / 100 / wall}
			for _, p := range procs {
				r.offered += tail(strings.TrimSpace(p.Stdout()), 1) + " "
			}
			if at, what := agentVerdict(e.agent.Proc.Output(), start); !at.IsZero() {
				r.agentAfter, r.agentWhat = at.Sub(start), what
			}
			if at, what := fnmBan(filepath.Join(dir, "bans"), start); !at.IsZero() {
				r.fnmAfter, r.fnmWhat = at.Sub(start), what
			}
			r.agentRSS, r.fnmRSS = vmHWM(e.agent.Proc.Pid()), vmHWM(fnm.Pid())
			// FastNetMon exits non-zero on SIGTERM; only a kill is news.
			if err := fnm.Stop(5 * time.Second); err != nil && strings.Contains(err.Error(), "killed") {
				t.Logf("fastnetmon stop: %v", err)
			}
			results = append(results, r)
		})
	}
	var agentT, fnmT []time.Duration
	fmt.Println("\nscenario | egressguard verdict | FastNetMon ban | egressguard CPU | FastNetMon CPU | CPU ratio (eg/fnm) | egressguard VmHWM | FastNetMon VmHWM | offered")
	for _, r := range results {
		show := func(d time.Duration) string {
			if d == 0 {
				return "none"
			}
			return fmt.Sprintf("%.3f s", d.Seconds())
		}
		ratio := "n/a"
		if r.fnmCPU > 0 {
			ratio = fmt.Sprintf("%.2f", r.agentCPU/r.fnmCPU)
		}
		fmt.Printf("%s | %s %s | %s %s | %.1f%% | %.1f%% | %s | %s | %s | %s\n", r.scenario, show(r.agentAfter), r.agentWhat,
			show(r.fnmAfter), r.fnmWhat, 100*r.agentCPU, 100*r.fnmCPU, ratio, r.agentRSS, r.fnmRSS, strings.TrimSpace(r.offered))
		if strings.HasPrefix(r.scenario, "node raw-socket") {
			if r.agentAfter > 0 {
				agentT = append(agentT, r.agentAfter)
			}
			if r.fnmAfter > 0 {
				fnmT = append(fnmT, r.fnmAfter)
			}
		}
	}
	median := func(ds []time.Duration) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	ma, mf := median(agentT), median(fnmT)
	fmt.Printf("node SYN flood, median over %d runs: egressguard %.3f s (%d verdicts), FastNetMon %.3f s (%d bans)", *fnmRuns, ma.Seconds(), len(agentT), mf.Seconds(), len(fnmT))
	if ma > 0 && mf > 0 {
		fmt.Printf(", ratio egressguard/FastNetMon %.2f", ma.Seconds()/mf.Seconds())
	}
	fmt.Println()
}
