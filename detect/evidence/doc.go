// Package evidence writes a verdict's evidence bundle to disk: a directory
// <dir>/<timestamp>-<interface>/ holding verdict.json (the verdict and its
// attribution) and packets.pcapng (the capture's sampled packets over the
// verdict's window, with their direction and sampling divisor, so that
// `egressguard replay` judges them as the agent did; absent when there are
// none or none fit). Bundles are written
// atomically (a temporary directory renamed into place), capped in bytes
// each and in number (the oldest are pruned), because the box may be
// reinstalled before anyone looks.
package evidence
