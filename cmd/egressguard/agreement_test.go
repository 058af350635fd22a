package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egressguard/egressguard/agent"
	"github.com/egressguard/egressguard/shaper"
)

// verdicts is what each command makes of one config file: nil when it
// accepts the file, else its error. Interface existence, which depends on
// the node and not on the file, is left out.
func verdicts(t testing.TB, body []byte) map[string]error {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	g := &globals{configPath: path, stdout: io.Discard, stderr: io.Discard}
	out := map[string]error{}
	// doctor and status read the file and go on with what it says.
	_, out["doctor"] = g.loadConfig()
	// plan and throttle turn it, with --interface alone, into a Spec and a Plan.
	f := throttleFlags{iface: "lo"}
	_, spec, _, err := f.resolve(g)
	if err == nil {
		_, err = shaper.NewPlan(spec, shaper.Features{})
	}
	out["plan"], out["throttle"] = err, err
	// run builds the detector and the policy engine from it.
	cfg, err := g.loadConfig()
	if err == nil {
		cfg.StateDir = filepath.Join(dir, "state")
		_, err = agent.New(agent.Deps{Config: cfg, Log: slog.New(slog.DiscardHandler)})
	}
	out["run"] = err
	return out
}

// agreementSeeds are files once accepted by one command and
// refused by another, and files every command accepts.
var agreementSeeds = []string{
	"",
	"mode: enforce\nthrottle: {rate: 2mbit, ports: [80, 443, 8443], scope: source}\n",
	"interfaces: [up0, up0]\n",
	"throttle: {protocols: [tcp, tcp]}\n",
	"detect: {interval: 1ns}\n",
	"detect: {interval: 100000h}\n",
	"whitelist: {cidrs: [0.0.0.0/0]}\n",
	"throttle: {ports: [80, 443, 80]}\n",
	"detect: {enter_after: 2.5}\n",
	"detect: {syn_rate_min: .nan, synack_ratio_max: .inf}\n",
	"detect: {rst_ratio_max: .inf}\n",
	"throttle: {max_actions_per_hour: 0}\n",
	"listen: 127.0.0.1:99999\n",
	"listen: nosuch.invalid:9466\n",
	"whitelist: {cidrs: [\"::ffff:198.18.0.0/111\"]}\n",
	"throttle: {rate: 10mbit, link_rate: 1mbit}\n",
	"throttle: {scope: node, max_sources: 0}\n",
	"throttle: {ttl: 48h}\n",
	"whitelist: {ports: [443]}\n",
	"whitelist: {ports: [0]}\n",
	// The per-key detection's keys: one accepted file, then one refused
	// value per key.
	"detect: {tick: 20ms, window: 1s, rtt_allowance: 150ms, key_enter_ticks: 3, key_exit_ticks: 40, close_ratio_max: 0.4, udp_rate_min: 8000, udp_reply_ratio_max: 0.1, icmp_rate_min: 500, icmp_reply_ratio_max: 0.3, icmp_rate_max: 50000, spoof_rate_min: 10, max_sources_tracked: 4096, max_ports_tracked: 512, owned: {vnet3: [192.0.2.10, \"2001:db8::/64\"]}}\n",
	"detect: {tick: 5ms}\n",
	"detect: {tick: 100ms, window: 50ms}\n",
	"detect: {rtt_allowance: 20s}\n",
	"detect: {key_enter_ticks: 0}\n",
	"detect: {key_exit_ticks: 1.5}\n",
	"detect: {close_ratio_max: 2}\n",
	"detect: {udp_rate_min: .nan}\n",
	"detect: {udp_reply_ratio_max: 0}\n",
	"detect: {icmp_rate_min: .inf}\n",
	"detect: {icmp_reply_ratio_max: -1}\n",
	"detect: {icmp_rate_max: 0}\n",
	"detect: {spoof_rate_min: .nan}\n",
	"detect: {max_sources_tracked: 1000000}\n",
	"detect: {max_ports_tracked: 100000}\n",
	"detect: {owned: {\"vnet/3\": [192.0.2.10]}}\n",
	"detect: {owned: {vnet3: [\"::ffff:192.0.2.0/120\"]}}\n",
	"detect: {owned: {vnet3: [192.0.2.10, 192.0.2.10]}}\n",
}

// TestCommandsAgreeOnEveryConfig: doctor, plan, throttle and run accept or
// refuse each seed alike.
func TestCommandsAgreeOnEveryConfig(t *testing.T) {
	for _, body := range agreementSeeds {
		checkAgreement(t, []byte(body))
	}
}

// FuzzCommandsAgree asserts that agreement on any file.
func FuzzCommandsAgree(f *testing.F) {
	for _, s := range agreementSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkAgreement(t, body) })
}

func checkAgreement(t *testing.T, body []byte) {
	t.Helper()
	v := verdicts(t, body)
	accepted, refused := []string{}, []string{}
	for cmd, err := range v {
		if err == nil {
			accepted = append(accepted, cmd)
		} else {
			refused = append(refused, cmd+": "+err.Error())
		}
	}
	if len(accepted) > 0 && len(refused) > 0 {
		t.Errorf("config %q: accepted by %v, refused by\n\t%s", body, accepted, strings.Join(refused, "\n\t"))
	}
}
