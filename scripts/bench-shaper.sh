#!/bin/sh
# Install + remove the default shaper layout on a veth in a namespace, over
# netlink and via Render's tc commands, in one `go test -bench` run, and
# print how many times faster netlink is. Needs root and iproute2.
set -eu
cd "$(dirname "$0")/.."
go test -run '^$' -bench '^BenchmarkApply(Netlink|TCCommands)$' -benchtime "${BENCHTIME:-30x}" ./shaper/ |
	tee /dev/stderr |
	awk '$1 ~ /^BenchmarkApplyNetlink/ {n = $3} $1 ~ /^BenchmarkApplyTCCommands/ {c = $3}
	     END { if (n == 0 || c == 0) exit 1; printf "netlink %.0f ns/op, tc commands %.0f ns/op: netlink is %.1fx faster\n", n, c, c / n }'
