// Package packaging holds no code: it is the home of the egressguard deb and
// rpm (nfpm.yaml, build.sh), the hardened systemd unit, the packaged default
// config, the maintainer scripts and the Kubernetes manifests. Its tests
// check those files offline: the config carries every docs/design.md §8 key, and the
// manifests decode strictly into Kubernetes API types with the properties
// the design requires.
package packaging
