// Package alerts turns Alertmanager webhook notifications into throttle and
// release requests for the egressguard agent: the webhook payload (version 4)
// as Go types, the pure mapping from alerts to Requests, the HTTP handler that
// authenticates and size-limits the webhook, and a Ledger the agent uses to
// make requests idempotent by alert fingerprint.
package alerts
