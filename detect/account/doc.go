// Package account keeps per-key packet accounting in bounded memory: per
// source address (IPv4 and IPv6), per VM bridge port and for the interface
// as a whole, over a sliding window of fixed ticks.
//
// It is pure: the live capture (detect/synwatch) and capture-file replay feed
// it the same Packet values, each with its sampling weight, and advance its
// clock with Tick; the per-key flood rule (detect.KeyDetector) reads Window
// sums from it. Heavy hitters are kept exactly from the tick they are
// promoted; every packet whose key holds no slot is counted in one "other"
// key, so the totals always add up and memory never grows with the number
// of distinct sources.
package account
