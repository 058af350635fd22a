package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/internal/netif"
	"github.com/egressguard/egressguard/shaper"
)

// DefaultPath is where every command looks for the config unless --config
// names another file. A missing default file means built-in defaults.
const DefaultPath = "/etc/egressguard/config.yaml"

// Modes the agent runs in.
const (
	ModeObserve = "observe"
	ModeEnforce = "enforce"
)

// Config is the whole configuration file (docs/design.md §8).
type Config struct {
	Mode       string    `yaml:"mode"`
	NodeName   string    `yaml:"node_name"`
	Interfaces []string  `yaml:"interfaces"`
	Listen     string    `yaml:"listen"`
	Socket     string    `yaml:"socket"`
	StateDir   string    `yaml:"state_dir"`
	Detect     Detect    `yaml:"detect"`
	Throttle   Throttle  `yaml:"throttle"`
	Whitelist  Whitelist `yaml:"whitelist"`
	Webhook    Webhook   `yaml:"webhook"`
}

// Detect holds the detector's thresholds (docs/design.md §3, §11). The
// per-key rule's keys are checked by detect.Config.Validate and the owned
// prefixes by detect.Owned.Validate, through validateComposed.
type Detect struct {
	Interval       Duration `yaml:"interval"`
	SynRateMin     float64  `yaml:"syn_rate_min"`
	SynackRatioMax float64  `yaml:"synack_ratio_max"`
	RstRatioMax    float64  `yaml:"rst_ratio_max"`
	CloseRatioMax  float64  `yaml:"close_ratio_max"`
	// UDPRateMin and UDPReplyRatioMax judge UDP out against UDP in.
	UDPRateMin       float64 `yaml:"udp_rate_min"`
	UDPReplyRatioMax float64 `yaml:"udp_reply_ratio_max"`
	EnterAfter       Count   `yaml:"enter_after"`
	ExitAfter        Count   `yaml:"exit_after"`
	// Tick and Window are the per-key sliding window: how often it slides
	// and the span it measures (detect.Config.Tick, Window).
	Tick   Duration `yaml:"tick"`
	Window Duration `yaml:"window"`
	// RTTAllowance is how long a SYN may wait for its SYN-ACK before it
	// counts as unanswered in the per-key rule (detect.Config.RTTAllowance).
	RTTAllowance  Duration `yaml:"rtt_allowance"`
	KeyEnterTicks Count    `yaml:"key_enter_ticks"`
	KeyExitTicks  Count    `yaml:"key_exit_ticks"`
	// ICMP and spoofing thresholds of the per-key rule.
	ICMPRateMin       float64 `yaml:"icmp_rate_min"`
	ICMPReplyRatioMax float64 `yaml:"icmp_reply_ratio_max"`
	ICMPRateMax       float64 `yaml:"icmp_rate_max"`
	SpoofRateMin      float64 `yaml:"spoof_rate_min"`
	// MaxSourcesTracked and MaxPortsTracked bound the keys the per-key
	// accounting tracks exactly, and so its memory.
	MaxSourcesTracked Count `yaml:"max_sources_tracked"`
	MaxPortsTracked   Count `yaml:"max_ports_tracked"`
	// Owned lists, per VM bridge port, the source prefixes it may emit
	// beyond what the neighbour and FDB tables show (detect.Owned).
	Owned map[string][]Prefix `yaml:"owned,omitempty"`
}

// Throttle says what a mitigation installs and how long it lives (docs/design.md §4, §5).
type Throttle struct {
	Rate              Rate         `yaml:"rate"`
	LinkRate          Rate         `yaml:"link_rate,omitempty"` // ignored since the clsact layout; kept so existing files load
	Ports             []Port       `yaml:"ports"`
	Protocols         []string     `yaml:"protocols"`
	Scope             shaper.Scope `yaml:"scope"`
	MaxSources        Count        `yaml:"max_sources"`
	TTL               Duration     `yaml:"ttl"`
	MaxTTL            Duration     `yaml:"max_ttl"`
	MaxActionsPerHour Count        `yaml:"max_actions_per_hour"`
}

// Whitelist is traffic that is never throttled; SSH port 22 is always in it.
type Whitelist struct {
	Ports []Port   `yaml:"ports"`
	CIDRs []Prefix `yaml:"cidrs"`
}

// Webhook configures the Alertmanager receiver.
type Webhook struct {
	TokenFile string `yaml:"token_file"`
}

// Default returns the built-in configuration of docs/design.md §8.
func Default() Config {
	return Config{
		Mode:     ModeObserve,
		Listen:   "127.0.0.1:9466",
		Socket:   "/run/egressguard/egressguard.sock",
		StateDir: "/var/lib/egressguard",
		Detect:   detectDefaults(detect.DefaultConfig()),
		Throttle: Throttle{
			Rate:              1_000_000,
			Ports:             []Port{80, 443},
			Protocols:         []string{"tcp", "udp"},
			Scope:             policy.ScopeAuto,
			MaxSources:        8,
			TTL:               Duration(30 * time.Minute),
			MaxTTL:            Duration(24 * time.Hour),
			MaxActionsPerHour: 6,
		},
		Whitelist: Whitelist{Ports: []Port{51820}},
		Webhook:   Webhook{TokenFile: "/etc/egressguard/webhook.token"},
	}
}

// detectDefaults is the detect section holding the detector's defaults.
func detectDefaults(dc detect.Config) Detect {
	return Detect{
		Interval:          Duration(time.Second),
		SynRateMin:        dc.SynRateMin,
		SynackRatioMax:    dc.SynAckRatioMax,
		RstRatioMax:       dc.RstRatioMax,
		CloseRatioMax:     dc.CloseRatioMax,
		UDPRateMin:        dc.UDPRateMin,
		UDPReplyRatioMax:  dc.UDPReplyRatioMax,
		EnterAfter:        Count(dc.EnterAfter),
		ExitAfter:         Count(dc.ExitAfter),
		Tick:              Duration(dc.Tick),
		Window:            Duration(dc.Window),
		RTTAllowance:      Duration(dc.RTTAllowance),
		KeyEnterTicks:     Count(dc.KeyEnterTicks),
		KeyExitTicks:      Count(dc.KeyExitTicks),
		ICMPRateMin:       dc.ICMPRateMin,
		ICMPReplyRatioMax: dc.ICMPReplyRatioMax,
		ICMPRateMax:       dc.ICMPRateMax,
		SpoofRateMin:      dc.SpoofRateMin,
		MaxSourcesTracked: Count(dc.MaxSourcesTracked),
		MaxPortsTracked:   Count(dc.MaxPortsTracked),
	}
}

// Load reads the config at path over the defaults. When the file does not
// exist and path is the default path, the defaults are returned: a node with
// no config file runs with built-in settings; a file named explicitly must
// exist.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && path == DefaultPath {
		c := Default()
		return c, c.Validate()
	}
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML over the defaults and validates the result.
func Parse(b []byte) (Config, error) {
	c := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Config{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, explain(err, fieldPaths(&doc))
	}
	return c, c.Validate()
}

// position is a line and column in the YAML text.
type position struct{ line, column int }

// fieldPaths maps the position of every key and value in the document to its
// dotted field name ("throttle.rate", "whitelist.cidrs[1]").
func fieldPaths(doc *yaml.Node) map[position]string {
	paths := map[position]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				paths[position{k.Line, k.Column}] = p
				paths[position{v.Line, v.Column}] = p
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				paths[position{c.Line, c.Column}] = p
				walk(c, p)
			}
		}
	}
	walk(doc, "")
	return paths
}

var unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type`)

// explain rewrites yaml.v3's errors so that they name the field.
func explain(err error, paths map[position]string) error {
	var ve *valueError
	if errors.As(err, &ve) {
		if p, ok := paths[position{ve.line, ve.column}]; ok {
			return fmt.Errorf("%s %w", p, ve.err)
		}
		return fmt.Errorf("line %d: %w", ve.line, ve.err)
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, m := range te.Errors {
			if g := unknownField.FindStringSubmatch(m); g != nil {
				line, _ := strconv.Atoi(g[1])
				msgs = append(msgs, fmt.Sprintf("unknown key %q (line %d)", keyPath(paths, line, g[2]), line))
				continue
			}
			msgs = append(msgs, m)
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

// keyPath finds the dotted path of key on line, falling back to the bare key.
func keyPath(paths map[position]string, line int, key string) string {
	for pos, p := range paths {
		if pos.line == line && (p == key || strings.HasSuffix(p, "."+key)) {
			return p
		}
	}
	return key
}

// Validate checks every field and names the first one that is wrong, with its
// value. It is called by Load and Parse; call it again after changing a
// Config by hand. The config's own keys (interfaces, listen, socket,
// state_dir, detect.interval) are checked here; the rest by the package
// that enforces them (see validateComposed), so every command agrees.
func (c *Config) Validate() error {
	for i, name := range c.Interfaces {
		if err := netif.ValidName(name); err != nil {
			return fmt.Errorf("interfaces[%d] %w", i, err)
		}
		if j := slices.Index(c.Interfaces, name); j < i {
			return fmt.Errorf("interfaces[%d] %q: listed twice (also interfaces[%d])", i, name, j)
		}
	}
	if err := validListen(c.Listen); err != nil {
		return err
	}
	if c.Socket == "" || !strings.HasPrefix(c.Socket, "/") {
		return fmt.Errorf("socket %q: want an absolute path", c.Socket)
	}
	if c.StateDir == "" || !strings.HasPrefix(c.StateDir, "/") {
		return fmt.Errorf("state_dir %q: want an absolute path", c.StateDir)
	}
	if d := time.Duration(c.Detect.Interval); d < MinInterval || d > MaxInterval {
		return fmt.Errorf("detect.interval %s: want from %s to %s", d, MinInterval, MaxInterval)
	}
	return c.validateComposed()
}

// Bounds of detect.interval: below 10ms the agent spends a core sampling,
// above a minute a flood runs for minutes before enter_after intervals pass.
const (
	MinInterval = 10 * time.Millisecond
	MaxInterval = time.Minute
)

// validListen checks listen: an IP address (or an empty host, every
// address, or localhost) and a port from 1 to 65535. A host name is refused
// rather than resolved: a start must not wait on DNS.
func validListen(listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen %q: want host:port like 127.0.0.1:9466", listen)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("listen %q: port %q: want a port from 1 to 65535", listen, port)
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "" && host != "localhost" {
		return fmt.Errorf("listen %q: host %q: want an IP address (or localhost), not a name to resolve", listen, host)
	}
	return nil
}
