// Package detect decides, from per-interval samples of one interface's
// outbound traffic, whether the node (or a VM behind it) has become an
// outbound flood source.
//
// The capture adapters (detect/nicstat for transmit counters, detect/synwatch
// for SYN / SYN-ACK / UDP counts) produce a Sample per interval; Detector
// turns the sequence of samples into a Verdict carrying its Evidence. The
// package is pure: it reads no kernel state and keeps no clock of its own.
package detect
