#!/usr/bin/env bash
# The network-namespace lab of DESIGN §9, as functions to source.
#
#   node  (LAB_NODE)  uplink "up0" 198.19.255.2/30, 2001:db8:ff:ffff::2/64
#   inet  (LAB_INET)  "wan0" 198.19.255.1/30, 2001:db8:ff:ffff::1/64, and it owns the whole
#                     198.18.0.0/15 and 2001:db8:ff::/48 ranges as local addresses, so random
#                     destinations never leave the lab.
#
# Every address used is inside the benchmark ranges; nothing outside the namespaces is touched.
# lab_down removes everything lab_up made; callers trap it on EXIT.
set -euo pipefail

LAB_PREFIX=${LAB_PREFIX:-egl-lab$$}
LAB_NODE=$LAB_PREFIX-node
LAB_INET=$LAB_PREFIX-inet
LAB_V4_NODE=198.19.255.2
LAB_V4_GW=198.19.255.1
LAB_V6_NODE=2001:db8:ff:ffff::2
LAB_V6_GW=2001:db8:ff:ffff::1
# A destination inside the range the internet namespace owns.
LAB_DST4=198.18.0.10
LAB_DST6=2001:db8:ff::10

lab_up() {
	ip netns add "$LAB_NODE"
	ip netns add "$LAB_INET"
	ip -n "$LAB_NODE" link set lo up
	ip -n "$LAB_INET" link set lo up
	ip -n "$LAB_NODE" link add up0 type veth peer name wan0 netns "$LAB_INET"
	ip -n "$LAB_NODE" addr add "$LAB_V4_NODE/30" dev up0
	ip -n "$LAB_INET" addr add "$LAB_V4_GW/30" dev wan0
	ip -n "$LAB_NODE" -6 addr add "$LAB_V6_NODE/64" dev up0 nodad
	ip -n "$LAB_INET" -6 addr add "$LAB_V6_GW/64" dev wan0 nodad
	ip -n "$LAB_NODE" link set up0 up
	ip -n "$LAB_INET" link set wan0 up
	ip -n "$LAB_NODE" route add default via "$LAB_V4_GW"
	ip -n "$LAB_NODE" -6 route add default via "$LAB_V6_GW"
	ip -n "$LAB_INET" route add local 198.18.0.0/15 dev lo
	ip -n "$LAB_INET" -6 route add local 2001:db8:ff::/48 dev lo
}

lab_down() {
	local ns
	for ns in "$LAB_NODE" "$LAB_INET"; do
		if ip netns pids "$ns" >/dev/null 2>&1; then
			ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
		fi
	done
	sleep 0.2
	for ns in "$LAB_NODE" "$LAB_INET"; do
		ip netns del "$ns" 2>/dev/null || true
	done
}

# lab_iperf_server PORT...: iperf3 servers in the internet namespace.
lab_iperf_server() {
	local p
	for p in "$@"; do
		ip netns exec "$LAB_INET" iperf3 -s -p "$p" -D >/dev/null
	done
	sleep 0.3
}

# lab_iperf_mbps DST PORT SECONDS [extra iperf3 args]: the receiver's Mbit/s of one run from the node.
lab_iperf_mbps() {
	local dst=$1 port=$2 secs=$3
	shift 3
	ip netns exec "$LAB_NODE" iperf3 -c "$dst" -p "$port" -t "$secs" -J "$@" 2>/dev/null |
		python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)
    e = r["end"]
    s = e.get("sum_received") or e.get("sum")
    print("%.2f" % (s["bits_per_second"] / 1e6))
except Exception:
    print("error")'
}
