package e2e

import (
	"os"
	"strconv"
	"testing"

	"github.com/egressguard/egressguard/internal/lab"
)

func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv(holdIdleEnv)); err == nil {
		os.Exit(holdIdle(n))
	}
	code := m.Run()
	lab.RemoveTools()
	os.Exit(code)
}
