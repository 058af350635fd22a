// Package labagent runs `egressguard run` and the CLI inside the node
// namespace of an internal/lab lab, for the end-to-end tests and the demo:
// the lab's agent configuration, the agent process, its HTTP status and
// metrics read from inside the namespace, and its JSON log lines. It is kept
// apart from internal/lab so that the lab itself depends on nothing of
// egressguard's and every package's kernel tests can build on it.
package labagent
