// Package nicstat reads per-interface transmit counters from /proc/net/dev
// (through prometheus/procfs) and turns successive readings into what was
// sent in between: byte and packet deltas over a measured interval. It
// copes with interfaces that appear and vanish and with counters that go
// down because an interface was recreated.
package nicstat
