package e2e

import (
	"strings"
	"testing"
)

// TestRefusedTargets: `throttle` on the loopback or on the existing but
// unwatched bridge exits 2 saying why and changes nothing, with and
// without a running agent. (The agent's own refusal, for the webhook and
// the socket, is held by agent.TestUnwatchedTargetsRefused.)
func TestRefusedTargets(t *testing.T) {
	e := newEnv(t, 1, nil)
	refused := func(when string) {
		t.Helper()
		for iface, why := range map[string]string{"lo": "loopback", "br0": "does not watch it (watched: up0)"} {
			out := e.cli(2, "throttle", "--interface", iface)
			t.Logf("%s: throttle --interface %s: %s", when, iface, strings.TrimSpace(out))
			if !strings.Contains(out, why) {
				t.Errorf("%s: throttle %s says %q: want it to say %q", when, iface, out, why)
			}
			if q, err := e.lab.Qdiscs(e.ctx, e.lab.Node, iface); err != nil || strings.Contains(q, "htb") {
				t.Errorf("%s: %s holds %q (%v): want nothing installed", when, iface, q, err)
			}
		}
	}
	refused("no agent")
	e.startAgent()
	refused("agent running")
}
