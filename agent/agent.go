package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/egressguard/egressguard/agent/control"
	"github.com/egressguard/egressguard/agent/policy"
	"github.com/egressguard/egressguard/agent/state"
	"github.com/egressguard/egressguard/config"
	"github.com/egressguard/egressguard/detect"
	"github.com/egressguard/egressguard/detect/attrib"
	"github.com/egressguard/egressguard/internal/netif"
	"github.com/egressguard/egressguard/shaper"
)

// PauseFile, inside the state directory, stops every new action while it
// exists; releases still happen.
const PauseFile = "pause"

// Capture is one watched interface's packet counts (detect/synwatch).
type Capture interface {
	Collect() detect.Counts
}

// TxReader reads every interface's transmit counters (detect/nicstat).
type TxReader interface {
	Read(now time.Time) (map[string]TxRates, error)
}

// TxRates is one interface's transmit delta over the last interval.
type TxRates struct {
	Bytes, Packets uint64
	Interval       time.Duration
}

// Evidence attributes a flood and writes its bundle when an interface turns
// flood; it returns what it found and where it wrote.
type Evidence interface {
	Write(v detect.Verdict, c detect.Counts) (attrib.Attribution, string, error)
}

// Deps are the agent's adapters; Run's caller builds them so tests and the
// command share the same loop.
type Deps struct {
	Config     config.Config
	Version    string
	Node       string
	Interfaces []string
	Captures   map[string]Capture
	Tx         TxReader
	Kernel     control.Kernel
	Features   shaper.Features
	Evidence   Evidence
	Log        *slog.Logger
	Now        func() time.Time

	// Binder, when set, (re)binds Captures to the interfaces holding the
	// watched names, following link events (links.go).
	Binder Binder
	// Watched says why each interface is watched and which bridge it
	// stands in for (shown in status); optional.
	Watched map[string]netif.Interface
	// Wake, when it delivers, runs an interval at once: a capture signals
	// that a key turned flood between two intervals (sub-second verdicts).
	Wake <-chan struct{}
}

// Agent is a running egressguard agent.
type Agent struct {
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	ctl     *control.Controller
	metrics *metrics

	// mu serialises everything that decides or acts: the loop, the webhook,
	// the socket. Holding it across kernel calls is deliberate: actions are
	// rare and must not interleave.
	mu       sync.Mutex
	cfg      config.Config
	det      *detect.Detector
	engine   *policy.Engine
	drops    map[string]uint64 // throttled-class drops at the last interval
	last     map[string]InterfaceView
	lastTick time.Time
	ready    bool
	// recordStale is set when a kernel change was not recorded, so that
	// repair reads the state file even with nothing mitigated.
	recordStale bool
	links       map[string]*link // by watched name
}

// InterfaceView is a watched interface's latest detection state.
type InterfaceView struct {
	Verdict     detect.Verdict
	Attribution *attrib.Attribution // of the latest flood on the interface
	Offered     uint64              // SYN+UDP the throttle dropped in the interval, added back to judge offered load
}

// New builds an agent from its adapters and validated config.
func New(d Deps) (*Agent, error) {
	store, err := state.Open(d.Config.StateDir)
	if err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	a := &Agent{
		deps:  d,
		log:   d.Log,
		now:   d.Now,
		drops: map[string]uint64{},
		last:  map[string]InterfaceView{},
		links: map[string]*link{},
		ctl: &control.Controller{Store: store, Kernel: d.Kernel, Features: d.Features, Now: d.Now, Log: d.Log,
			RecoverTTL: time.Duration(d.Config.Throttle.TTL)},
	}
	a.metrics = newMetrics(d.Version, kernelCollector{a})
	if err := a.configure(d.Config); err != nil {
		return nil, err
	}
	return a, nil
}

// configure builds the detector and policy engine from cfg, carrying over
// the mitigations in force, and hands the captures their per-key config
// and owned prefixes. It is how SIGHUP reloads.
func (a *Agent) configure(cfg config.Config) error {
	det, err := detect.NewDetector(cfg.DetectorConfig())
	if err != nil {
		return err
	}
	pauseFile := filepath.Join(cfg.StateDir, PauseFile)
	eng, err := policy.New(cfg.PolicyConfig(func() bool {
		_, err := os.Stat(pauseFile)
		return err == nil
	}))
	if err != nil {
		return err
	}
	if a.engine != nil {
		if err := eng.Adopt(a.engine.Mitigations()); err != nil {
			return err
		}
	}
	// Last, as the one step that changes running captures: it refuses a
	// bad config before touching any.
	if a.deps.Binder != nil {
		if err := a.deps.Binder.Reconfigure(cfg.DetectorConfig(), cfg.Owned()); err != nil {
			return err
		}
	}
	a.cfg, a.det, a.engine = cfg, det, eng
	return nil
}

// Reload validates and applies a new config; on error the old one stays.
// Interfaces, listen address and socket take effect at the next start.
func (a *Agent) Reload(cfg config.Config) error {
	if err := CheckWebhookToken(cfg.Webhook.TokenFile, a.log); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.configure(cfg); err != nil {
		return err
	}
	a.log.Info("config reloaded", "mode", cfg.Mode)
	return nil
}

// spec is the shaper.Spec that installs mitigation m: its interface, scope,
// sources, protocols and ports as the policy decided them (empty = any), and
// the config's rate (unless m names one), whitelist and DNS resolvers.
func (a *Agent) spec(m policy.Mitigation) shaper.Spec {
	s := a.cfg.Spec(m.Interface)
	if m.RateBps != 0 {
		s.Rate = m.RateBps
	}
	s.Scope, s.Sources = m.Scope, m.Sources
	s.Protocols, s.Ports = m.Protocols, m.Ports
	resolvers, err := shaper.ReadResolvers(shaper.ResolvConf)
	if err != nil {
		a.log.Warn("DNS resolvers not whitelisted", "err", err)
	}
	s.Resolvers = resolvers
	return s
}
