package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Tools are the project's binaries the lab runs, built once per process.
type Tools struct {
	Dir         string
	Egressguard string // ./cmd/egressguard
	Synflood    string // ./scripts/synflood
	Crawler     string // ./scripts/crawler
	Sink        string // ./scripts/sink
	// SyscallFilter is ./scripts/syscallfilter: it runs a command under a
	// systemd unit's SystemCallFilter= where systemd is not PID 1.
	SyscallFilter string
	Delayline     string // ./scripts/delayline
}

var (
	toolsOnce sync.Once
	tools     Tools
	toolsErr  error
)

// BuildTools builds ./cmd/egressguard and the traffic generators of
// ./scripts into a temporary directory, once per process (the module root is
// found from the working directory); RemoveTools deletes them.
func BuildTools() (Tools, error) {
	toolsOnce.Do(func() {
		var root string
		root, toolsErr = moduleRoot()
		if toolsErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "egl-bin-")
		if err != nil {
			toolsErr = fmt.Errorf("lab: build tools: %w", err)
			return
		}
		cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
			"./cmd/egressguard", "./scripts/synflood", "./scripts/crawler", "./scripts/sink",
			"./scripts/syscallfilter", "./scripts/delayline")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			toolsErr = fmt.Errorf("lab: go build: %w\n%s", err, out)
			return
		}
		tools = Tools{
			Dir:           dir,
			Egressguard:   filepath.Join(dir, "egressguard"),
			Synflood:      filepath.Join(dir, "synflood"),
			Crawler:       filepath.Join(dir, "crawler"),
			Sink:          filepath.Join(dir, "sink"),
			SyscallFilter: filepath.Join(dir, "syscallfilter"),
			Delayline:     filepath.Join(dir, "delayline"),
		}
	})
	return tools, toolsErr
}

// RemoveTools deletes what BuildTools built (call it from TestMain or at exit).
func RemoveTools() {
	if tools.Dir != "" {
		os.RemoveAll(tools.Dir)
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("lab: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("lab: not inside the egressguard module (go env GOMOD is %q)", mod)
	}
	return filepath.Dir(mod), nil
}
