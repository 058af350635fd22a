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

// Detect holds the detector's thresholds (docs/design.md §3).
type Detect struct {
	Interval       Duration `yaml:"interval"`
	SynRateMin     float64  `yaml:"syn_rate_min"`
	SynackRatioMax float64  `yaml:"synack_ratio_max"`
	RstRatioMax    float64  `yaml:"rst_ratio_max"`
	EnterAfter     int      `yaml:"enter_after"`
	ExitAfter      int      `yaml:"exit_after"`
}

// Throttle says what a mitigation installs and how long it lives (docs/design.md §4, §5).
type Throttle struct {
	Rate              Rate         `yaml:"rate"`
	LinkRate          Rate         `yaml:"link_rate,omitempty"`
	Ports             []Port       `yaml:"ports"`
	Protocols         []string     `yaml:"protocols"`
	Scope             shaper.Scope `yaml:"scope"`
	MaxSources        int          `yaml:"max_sources"`
	TTL               Duration     `yaml:"ttl"`
	MaxTTL            Duration     `yaml:"max_ttl"`
	MaxActionsPerHour int          `yaml:"max_actions_per_hour"`
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
		Detect: Detect{
			Interval:       Duration(time.Second),
			SynRateMin:     2000,
			SynackRatioMax: 0.2,
			RstRatioMax:    0.5,
			EnterAfter:     3,
			ExitAfter:      30,
		},
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
// Config by hand.
func (c *Config) Validate() error {
	if c.Mode != ModeObserve && c.Mode != ModeEnforce {
		return fmt.Errorf("mode %q: want observe or enforce", c.Mode)
	}
	for i, name := range c.Interfaces {
		if err := ValidInterfaceName(name); err != nil {
			return fmt.Errorf("interfaces[%d] %w", i, err)
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: want host:port like 127.0.0.1:9466", c.Listen)
	}
	if c.Socket == "" || !strings.HasPrefix(c.Socket, "/") {
		return fmt.Errorf("socket %q: want an absolute path", c.Socket)
	}
	if c.StateDir == "" || !strings.HasPrefix(c.StateDir, "/") {
		return fmt.Errorf("state_dir %q: want an absolute path", c.StateDir)
	}
	if err := c.Detect.validate(); err != nil {
		return err
	}
	if err := c.Throttle.validate(); err != nil {
		return err
	}
	for i, p := range c.Throttle.Ports {
		if uint16(p) == shaper.SSHPort || slices.Contains(c.Whitelist.Ports, p) {
			return fmt.Errorf("throttle.ports[%d] %d: port is whitelisted (SSH 22 and whitelist.ports are never throttled)", i, p)
		}
	}
	for i, p := range c.Whitelist.CIDRs {
		if !netip.Prefix(p).IsValid() {
			return fmt.Errorf("whitelist.cidrs[%d]: empty prefix", i)
		}
	}
	return nil
}

func (d Detect) validate() error {
	switch {
	case d.Interval <= 0:
		return fmt.Errorf("detect.interval %s: want a positive duration", time.Duration(d.Interval))
	case d.SynRateMin <= 0:
		return fmt.Errorf("detect.syn_rate_min %v: want a positive rate (SYN/s)", d.SynRateMin)
	case d.SynackRatioMax <= 0 || d.SynackRatioMax >= 1:
		return fmt.Errorf("detect.synack_ratio_max %v: want a ratio between 0 and 1", d.SynackRatioMax)
	case d.RstRatioMax <= 0:
		return fmt.Errorf("detect.rst_ratio_max %v: want a positive ratio", d.RstRatioMax)
	case d.EnterAfter < 1:
		return fmt.Errorf("detect.enter_after %d: want at least 1 interval", d.EnterAfter)
	case d.ExitAfter < 1:
		return fmt.Errorf("detect.exit_after %d: want at least 1 interval", d.ExitAfter)
	}
	return nil
}

func (t Throttle) validate() error {
	if t.Rate == 0 {
		return fmt.Errorf("throttle.rate: want a rate like 1mbit")
	}
	if t.LinkRate != 0 && t.LinkRate < t.Rate {
		return fmt.Errorf("throttle.link_rate %s: below throttle.rate %s", shaper.FormatRate(uint64(t.LinkRate)), shaper.FormatRate(uint64(t.Rate)))
	}
	if len(t.Ports) == 0 {
		return fmt.Errorf("throttle.ports: want at least one port")
	}
	if len(t.Protocols) == 0 {
		return fmt.Errorf("throttle.protocols: want tcp, udp or both")
	}
	for i, p := range t.Protocols {
		if p != "tcp" && p != "udp" {
			return fmt.Errorf("throttle.protocols[%d] %q: want tcp or udp", i, p)
		}
	}
	switch t.Scope {
	case policy.ScopeAuto, shaper.ScopeSource, shaper.ScopeNode:
	default:
		return fmt.Errorf("throttle.scope %q: want auto, source or node", t.Scope)
	}
	if t.MaxSources < 1 {
		return fmt.Errorf("throttle.max_sources %d: want at least 1", t.MaxSources)
	}
	if t.MaxTTL < t.TTL {
		return fmt.Errorf("throttle.max_ttl %s: below throttle.ttl %s", time.Duration(t.MaxTTL), time.Duration(t.TTL))
	}
	if t.MaxActionsPerHour < 0 {
		return fmt.Errorf("throttle.max_actions_per_hour %d: want 0 or more", t.MaxActionsPerHour)
	}
	return nil
}

var ifaceName = regexp.MustCompile(`^[^/\s:]{1,15}$`)

// ValidInterfaceName checks a Linux interface name (1 to 15 bytes, no slash,
// colon or white space). The error starts with the quoted name.
func ValidInterfaceName(name string) error {
	if !ifaceName.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%q: want an interface name of 1 to 15 characters without '/', ':' or spaces", name)
	}
	return nil
}
