// Package pcaps finds the public packet captures the tests replay. They are
// not in this repository (their licences vary): they live in ../shared/pcaps
// beside the repository root, one directory per category, each capture with
// a .txt note giving its source, licence and content. Tests skip, saying so,
// when that directory is absent.
package pcaps

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Capture is one public capture file.
type Capture struct {
	Category string // syn_flood, udp_icmp_flood, port_scan, benign, decoder_edge
	Name     string // file name
	Path     string
}

// Dir returns the captures' directory, or skips tb when it is absent.
func Dir(tb testing.TB) string {
	tb.Helper()
	root, err := moduleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(root, "..", "shared", "pcaps")
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("public captures not found at %s (../shared/pcaps beside the repository root): %v", dir, err)
	}
	return dir
}

// All lists every capture under Dir, sorted by category and name.
func All(tb testing.TB) []Capture {
	tb.Helper()
	dir := Dir(tb)
	var out []Capture
	cats, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range cats {
		if !c.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, c.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f.Name(), ".pcap") || strings.HasSuffix(f.Name(), ".pcapng") {
				out = append(out, Capture{Category: c.Name(), Name: f.Name(), Path: filepath.Join(dir, c.Name(), f.Name())})
			}
		}
	}
	slices.SortFunc(out, func(a, b Capture) int { return strings.Compare(a.Category+"/"+a.Name, b.Category+"/"+b.Name) })
	return out
}

// moduleRoot walks up from the working directory to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("pcaps: no go.mod above the working directory")
		}
		dir = parent
	}
}
