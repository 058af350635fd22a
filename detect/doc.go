// Package detect decides whether the node, or a VM behind it, has become an
// outbound flood source, and names what floods.
//
// The capture adapters (detect/nicstat for transmit counters, detect/synwatch
// for packet counts) produce a Sample per interval; Detector turns the
// sequence of samples into a Verdict carrying its Evidence and Signature.
// Every tick (detect.tick, 50 ms by default) KeyDetector applies the same
// flood rule to each key of a detect/account.Accounting — each source
// address, each VM bridge port, the untracked rest and the interface — with
// an RTT allowance before unanswered packets count as failed; a flooding key
// makes the interface's verdict flood even when the aggregate looks healthy.
// The package is pure: it reads no kernel state and keeps no clock of its own.
package detect
