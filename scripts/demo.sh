#!/usr/bin/env bash
# `make demo`: the whole story of docs/design.md §9 in the namespace lab (scripts/demo,
# built on internal/lab): detection, attribution, throttling and release of a
# node flood and a VM flood next to benign traffic. Needs root; leaves nothing
# behind.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (sudo make demo): it creates network namespaces" >&2; exit 1; }
for t in go ip tc nft iperf3; do
	command -v "$t" >/dev/null || { echo "demo: $t is missing (apt-get install iproute2 nftables iperf3; and a Go toolchain)" >&2; exit 1; }
done
exec go run ./scripts/demo "$@"
