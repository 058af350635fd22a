package e2e

import (
	"os"
	"testing"

	"github.com/egressguard/egressguard/internal/lab"
)

func TestMain(m *testing.M) {
	code := m.Run()
	lab.RemoveTools()
	os.Exit(code)
}
