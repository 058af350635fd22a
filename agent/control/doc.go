// Package control performs and records mitigations: it turns a shaper.Spec
// into a plan, installs it, and keeps the state file in step with the
// kernel, so that the CLI acting on its own and the agent act alike and each
// adopts what the other did.
package control
