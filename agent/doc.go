// Package agent is `egressguard run`: it feeds each watched interface's
// capture and transmit counters to the detector, turns verdicts, webhook
// alerts and operator requests into bounded mitigations through the policy
// engine, installs them with the shaper, keeps the state file crash-safe and
// serves metrics, health, status, the Alertmanager webhook and the CLI's
// unix socket.
package agent
