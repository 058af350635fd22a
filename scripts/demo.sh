#!/usr/bin/env bash
# `make demo`: the lab with a manual throttle. It measures iperf3 throughput from the node to
# port 443 and to the SSH port before, during and after `egressguard throttle --rate 1mbit`,
# then removes every namespace it made.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (sudo make demo): it creates network namespaces" >&2; exit 1; }
for t in ip tc iperf3 python3; do command -v "$t" >/dev/null || { echo "demo: $t is missing (apt-get install iproute2 iperf3 python3)" >&2; exit 1; }; done
BIN=${EGRESSGUARD_BIN:-bin/egressguard}
[ -x "$BIN" ] || { echo "demo: $BIN is missing: run make build" >&2; exit 1; }

# shellcheck source=scripts/lab.sh
. scripts/lab.sh
work=$(mktemp -d)
trap 'lab_down; rm -rf "$work"' EXIT
lab_up
cat >"$work/config.yaml" <<CFG
mode: enforce
state_dir: $work/state
socket: $work/egressguard.sock
CFG
eg() { ip netns exec "$LAB_NODE" "$BIN" --config "$work/config.yaml" "$@"; }

lab_iperf_server 443 22
SECS=${DEMO_SECONDS:-3}
measure() {
	printf '%-8s %12s %12s\n' "$1" "$(lab_iperf_mbps $LAB_DST4 443 "$SECS")" "$(lab_iperf_mbps $LAB_DST4 22 "$SECS")"
}
echo "== egressguard demo: node $LAB_NODE, uplink up0, destinations inside 198.18.0.0/15"
printf '%-8s %12s %12s\n' phase "443 Mbit/s" "22 Mbit/s"
measure before
eg throttle --interface up0 --rate 1mbit --ttl 10m
measure during
echo "== tc on the node's uplink while throttled:"
ip netns exec "$LAB_NODE" tc -s class show dev up0 | sed 's/^/   /'
eg status
eg unthrottle --interface up0
measure after
echo "== root qdisc after unthrottle: $(ip netns exec "$LAB_NODE" tc qdisc show dev up0 root)"
