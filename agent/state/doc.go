// Package state keeps egressguard's record of the mitigations it installed:
// one JSON file in the state directory, written atomically (temp file, fsync,
// rename, fsync of the directory) so that a crash at any moment leaves either
// the old record or the new one. An exclusive lock file serialises the agent
// and CLI invocations that act without it.
package state
