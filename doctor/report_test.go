package doctor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/egressguard/egressguard/shaper"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// sample is a report as this kernel (no sch_sfq, no fq_codel) gives it.
var sample = Report{Checks: []Check{
	{Name: "capabilities", Status: StatusOK, Detail: "CAP_NET_ADMIN and CAP_NET_RAW held (CapEff 0000000000003000)"},
	{Name: "sch_htb", Status: StatusOK, Detail: "present (probed)"},
	leafChecks(shaper.Features{}, nil)[0],
	{Name: "interface eth9", Status: StatusFail, Detail: "configured, but: doctor: interface eth9: Link not found",
		Hint: "fix `interfaces` in /etc/egressguard/config.yaml"},
}}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := sample.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", b.Bytes())
}

func TestJSON(t *testing.T) {
	b, err := json.MarshalIndent(sample, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", append(b, '\n'))
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Checks) != len(sample.Checks) || back.Checks[3] != sample.Checks[3] {
		t.Errorf("round trip: %+v", back)
	}
}

func TestFailed(t *testing.T) {
	for _, tc := range []struct {
		statuses []Status
		want     bool
	}{
		{nil, false},
		{[]Status{StatusOK, StatusWarn}, false},
		{[]Status{StatusOK, StatusFail, StatusWarn}, true},
	} {
		var r Report
		for _, s := range tc.statuses {
			r.Checks = append(r.Checks, Check{Name: "x", Status: s})
		}
		if got := r.Failed(); got != tc.want {
			t.Errorf("%v: Failed() = %v, want %v", tc.statuses, got, tc.want)
		}
	}
}
