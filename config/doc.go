// Package config loads and validates egressguard's YAML configuration
// (docs/design.md §8). Unknown keys are errors, and every error names the field and
// the value that was rejected, so an operator can fix the file without
// guessing. The scalar parsers (rates, ports, prefixes) are shared with the
// CLI so a flag and a config key accept exactly the same spellings.
package config
