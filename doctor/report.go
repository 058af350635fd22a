package doctor

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Status is the outcome of one check.
type Status string

// The outcomes of a check: ok, a degraded but working setup (warn), or one
// the agent cannot mitigate on (fail).
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// Check is one finding: what was checked, its outcome, what was seen and,
// when it is not ok, what to do about it.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
}

// Report is every check of one doctor run, in the order they ran.
type Report struct {
	Checks []Check `json:"checks"`
}

// Failed reports whether any check failed; the CLI then exits 1.
func (r Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == StatusFail {
			return true
		}
	}
	return false
}

// count returns how many checks have status s.
func (r Report) count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// WriteText writes the report for a terminal: one line per check, its hint
// indented below it, and a summary line.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Status, c.Name, c.Detail)
		if c.Hint != "" {
			fmt.Fprintf(tw, "\t\thint: %s\n", c.Hint)
		}
	}
	fmt.Fprintf(tw, "\n%d ok, %d warnings, %d failures\n", r.count(StatusOK), r.count(StatusWarn), r.count(StatusFail))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("doctor: write report: %w", err)
	}
	return nil
}
