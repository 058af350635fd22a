// Package alerts turns Alertmanager webhook notifications into throttle and
// release requests for the egressguard agent: the webhook payload (version 4)
// as Go types, the pure mapping from alerts to requests, the HTTP handler that
// authenticates and size-limits the webhook. Idempotency by fingerprint is
// the Sink's: the agent's policy keeps one claim per fingerprint.
package alerts
