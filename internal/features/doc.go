// Package features probes the kernel for the tc object kinds and socket
// families egressguard relies on, once per process, with nothing but
// CAP_NET_ADMIN and CAP_NET_RAW (the packaged unit's set) and without
// leaving a trace: no network namespace, no veth, no kernel-log line.
//
// Each HaveX returns nil when the kernel has the feature, an error wrapping
// ErrNotSupported when it lacks it, and any other error when the probe was
// inconclusive (no permission, an unexpected answer). Results are cached
// for the life of the process, as in cilium/ebpf's features package.
//
// How a kind is tried: the kernel resolves an object's kind (loading its
// module on demand) before it validates the object's options, and answers
// ENOENT for a kind it cannot find. So each probe asks for an object whose
// options are deliberately invalid for that kind: EINVAL proves the kind is
// there, ENOENT that it is not, and nothing is ever created.
package features
