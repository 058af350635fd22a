// Package policy is egressguard's decision engine: it sits between the
// detector's per-interval verdicts, the Alertmanager webhook and the CLI on
// one side and the shaper on the other, and turns what they ask for into
// decisions (throttle, update, keep, release, refuse, alert) under the
// operator's limits: observe vs enforce mode, a TTL renewed while a flood
// lasts and capped by max_ttl, exit_after clean intervals before the
// detector lets go, a sliding one-hour action budget, a pause switch and a
// whitelist that is never throttled whoever asks.
//
// The package is pure: it holds state in memory, takes the current time as
// an argument and touches neither the kernel nor the disk (the pause file is
// read through Config.Paused). An Engine is not safe for concurrent use; the
// agent owns it from a single goroutine, so it takes no locks.
//
// One mitigation exists per interface. Several owners may share it: the
// detector (owner "detector") and any number of requests, each identified by
// its ID (an Alertmanager fingerprint, "manual"). Each owner holds its own
// claim (scope, sources, ports, expiry); the mitigation applied to the kernel
// is the union of the claims, so when one owner leaves the mitigation narrows
// to what the others still ask for, and it is released when the last owner
// leaves or expires.
//
// Observe mode refuses every throttle and update, whoever asks. Releases are
// never refused, in any mode, paused or not: they only ever throttle less,
// and a mitigation adopted from an earlier enforce run must still be able to
// expire or be unthrottled by the operator after a switch to observe.
package policy
