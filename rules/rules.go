package rules

import (
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

//go:embed *.rules.yml
var embedded embed.FS

//go:embed dashboards/egressguard.json
var dashboard []byte

// Dashboard returns the Grafana dashboard (JSON) over the agent's metrics,
// shipped as /usr/share/egressguard/dashboards/egressguard.json. The slice
// is a fresh copy.
func Dashboard() []byte { return bytes.Clone(dashboard) }

// Files returns the embedded rule files, file name → content. The map and the
// slices are fresh copies on every call.
func Files() map[string][]byte {
	names, err := fs.Glob(embedded, "*.rules.yml")
	if err != nil {
		panic(fmt.Sprintf("rules: glob embedded files: %v", err)) // the pattern is a constant
	}
	files := make(map[string][]byte, len(names))
	for _, name := range names {
		content, err := embedded.ReadFile(name)
		if err != nil {
			panic(fmt.Sprintf("rules: read embedded %s: %v", name, err)) // embedded files are always readable
		}
		files[name] = content
	}
	return files
}

// Write writes every rule file into dir (created if missing) with mode 0644,
// each one atomically: a reader never sees a half-written file.
func Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("rules: create %s: %w", dir, err)
	}
	files := Files()
	for _, name := range sortedNames(files) {
		if err := writeAtomic(filepath.Join(dir, name), files[name]); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, content []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("rules: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.Write(content)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("rules: write %s: %w", path, err)
	}
	return nil
}

// groupsLine starts the one top-level key of a Prometheus rule file.
var groupsLine = []byte("\ngroups:\n")

// Print writes all rule files to w as one loadable rule file: a single
// `groups:` list holding every file's groups, each file's comments kept.
func Print(w io.Writer) error {
	files := Files()
	names := sortedNames(files)
	var out bytes.Buffer
	fmt.Fprintf(&out, "# Prometheus rules from `egressguard rules`: %d files merged into one.\ngroups:\n", len(names))
	for _, name := range names {
		content := files[name]
		i := bytes.Index(content, groupsLine)
		if i < 0 || bytes.Contains(content[i+len(groupsLine):], groupsLine) {
			return fmt.Errorf("rules: print %s: want exactly one top-level \"groups:\" line", name)
		}
		fmt.Fprintf(&out, "\n# --- %s ---\n", name)
		out.Write(content[:i+1]) // the file's leading comments
		out.Write(content[i+len(groupsLine):])
	}
	if _, err := w.Write(out.Bytes()); err != nil {
		return fmt.Errorf("rules: print: %w", err)
	}
	return nil
}

func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
