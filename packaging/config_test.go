package packaging

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// designKeys is every key of docs/design.md §8 with its default as YAML text.
var designKeys = []struct{ key, value string }{
	{"mode", "observe"},
	{"node_name", ""},
	{"interfaces", "[]"},
	{"listen", "127.0.0.1:9466"},
	{"socket", "/run/egressguard/egressguard.sock"},
	{"state_dir", "/var/lib/egressguard"},
	{"detect.interval", "1s"},
	{"detect.syn_rate_min", "2000"},
	{"detect.synack_ratio_max", "0.2"},
	{"detect.rst_ratio_max", "0.5"},
	{"detect.enter_after", "3"},
	{"detect.exit_after", "30"},
	{"detect.close_ratio_max", "0.5"},
	{"detect.udp_rate_min", "5000"},
	{"detect.udp_reply_ratio_max", "0.05"},
	{"detect.tick", "50ms"},
	{"detect.window", "500ms"},
	{"detect.rtt_allowance", "300ms"},
	{"detect.key_enter_ticks", "2"},
	{"detect.key_exit_ticks", "30"},
	{"detect.icmp_rate_min", "1000"},
	{"detect.icmp_reply_ratio_max", "0.2"},
	{"detect.icmp_rate_max", "20000"},
	{"detect.spoof_rate_min", "100"},
	{"detect.max_sources_tracked", "1024"},
	{"detect.max_ports_tracked", "256"},
	{"throttle.rate", "1mbit"},
	{"throttle.ports", "[80, 443]"},
	{"throttle.protocols", "[tcp, udp]"},
	{"throttle.scope", "auto"},
	{"throttle.max_sources", "8"},
	{"throttle.ttl", "30m"},
	{"throttle.max_ttl", "24h"},
	{"throttle.max_actions_per_hour", "6"},
	{"whitelist.ports", "[51820]"},
	{"whitelist.cidrs", "[]"},
	{"webhook.token_file", "/etc/egressguard/webhook.token"},
}

// configKey is one leaf key of a config file.
type configKey struct {
	value     string // scalar value, or a flow sequence as "[a, b]"
	commented bool   // a comment above the key or on its line
}

// readConfigKeys decodes a config document and returns its leaf keys by
// dotted name. Mappings nest; anything else is a leaf.
func readConfigKeys(t *testing.T, text []byte) map[string]configKey {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("config is not one mapping")
	}
	keys := map[string]configKey{}
	var walk func(prefix string, m *yaml.Node)
	walk = func(prefix string, m *yaml.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			name := prefix + k.Value
			if v.Kind == yaml.MappingNode {
				walk(name+".", v)
				continue
			}
			keys[name] = configKey{
				value:     leafText(v),
				commented: k.HeadComment != "" || k.LineComment != "" || v.LineComment != "",
			}
		}
	}
	walk("", doc.Content[0])
	return keys
}

// leafText renders a scalar or a sequence of scalars as the tests spell it.
func leafText(n *yaml.Node) string {
	if n.Kind != yaml.SequenceNode {
		return n.Value
	}
	items := make([]string, len(n.Content))
	for i, c := range n.Content {
		items[i] = c.Value
	}
	return "[" + strings.Join(items, ", ") + "]"
}

func TestPackagedConfigHasEveryDesignKey(t *testing.T) {
	text, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keys := readConfigKeys(t, text)
	want := map[string]bool{}
	for _, k := range designKeys {
		want[k.key] = true
		got, ok := keys[k.key]
		switch {
		case !ok:
			t.Errorf("%s: missing", k.key)
		case got.value != k.value:
			t.Errorf("%s = %q, want the docs/design.md §8 default %q", k.key, got.value, k.value)
		case !got.commented:
			t.Errorf("%s: no comment saying what it does", k.key)
		}
	}
	for k := range keys {
		if !want[k] {
			t.Errorf("%s: not a docs/design.md §8 key", k)
		}
	}
}

func TestKubernetesConfigUsesOnlyDesignKeys(t *testing.T) {
	cm := readConfigMap(t)
	text, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.yaml", cm.Name)
	}
	want := map[string]bool{}
	for _, k := range designKeys {
		want[k.key] = true
	}
	keys := readConfigKeys(t, []byte(text))
	for k := range keys {
		if !want[k] {
			t.Errorf("ConfigMap config.yaml: %s is not a docs/design.md §8 key", k)
		}
	}
	if got := keys["mode"].value; got != "observe" {
		t.Errorf("ConfigMap mode = %q, want observe", got)
	}
	if got := keys["listen"].value; got != "0.0.0.0:9466" {
		t.Errorf("ConfigMap listen = %q, want 0.0.0.0:9466 so kubelet probes and Prometheus reach it", got)
	}
	if got := keys["state_dir"].value; got != stateDir {
		t.Errorf("ConfigMap state_dir = %q, want the hostPath mount %s", got, stateDir)
	}
}
