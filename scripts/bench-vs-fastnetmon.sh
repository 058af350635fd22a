#!/bin/sh
# egressguard beside FastNetMon CE (Debian's fastnetmon) in the namespace lab (root: it builds egl-
# namespaces and removes them). Both watch the node's uplink up0 on the same traffic: FastNetMon in the
# foreground, AF_PACKET, per-host pps ban at its fastest averaging, usage report off, stopped with
# SIGTERM; the agent in observe mode so neither sees what the other throttled. Scenarios: a healthy
# upload to 443, a spoofed-source VM flood, the busy node, and RUNS runs of the node raw-socket SYN flood.
# Prints, per scenario and tool, time to verdict / ban and CPU share, their ratios, and the medians.
#
#	sudo scripts/bench-vs-fastnetmon.sh [RUNS]     (default 5)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-5}
if ! command -v fastnetmon >/dev/null 2>&1; then
	apt-get install -y -o DPkg::Lock::Timeout=600 fastnetmon
fi
# The package's service would watch the host's own interfaces: never run it here.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl stop fastnetmon 2>/dev/null || true
fi
go test -count=1 -p 1 -timeout 30m -run '^TestVsFastNetMon$' -v ./e2e -args -fastnetmon-runs="$runs" |
	grep -v '^=== ' | grep -v '"level"'
