// Package evidence writes a verdict's evidence bundle to disk: a directory
// <dir>/<timestamp>-<interface>/ holding verdict.json (the verdict and its
// attribution) and packets.pcap (sampled packets; absent when there are
// none or none fit). Bundles are written
// atomically (a temporary directory renamed into place), capped in bytes
// each and in number (the oldest are pruned), because the box may be
// reinstalled before anyone looks.
package evidence
