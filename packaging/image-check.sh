#!/bin/sh
# Runs the egressguard image the way the DaemonSet does (host network, only
# NET_ADMIN, NET_RAW, SYS_PTRACE and DAC_READ_SEARCH) inside a throwaway network namespace, and checks it
# with the host's own tc: doctor --json reports, a throttle installs our HTB
# layout, the release removes it; then the agent runs detached as the
# DaemonSet runs it (read-only root, config and token read-only) and answers
# /readyz and /metrics.
#
#   packaging/image-check.sh [dist/egressguard-image.tar]
#
# Needs root, podman and iproute2. podman keeps its storage in a throwaway
# directory (vfs driver, cgroupfs manager, file events logger), so it needs
# no systemd, no storage configuration and leaves nothing behind.
set -eu

self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
archive=${1:-dist/egressguard-image.tar}
[ "$(id -u)" = 0 ] || { echo "image-check: needs root" >&2; exit 2; }
[ -f "$archive" ] || { echo "image-check: $archive missing; run make image" >&2; exit 2; }
command -v podman >/dev/null 2>&1 || { echo "image-check: podman missing; run: apt-get install -y podman" >&2; exit 1; }

# crun refuses a hybrid cgroup v1+v2 host while it sets up the container's
# /sys/fs/cgroup; in a private mount namespace without the v2 mount the host
# looks pure v1. Pure v1 or pure v2 hosts need nothing.
if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
	if [ -z "${EGRESSGUARD_IMAGE_CHECK_UNSHARED:-}" ]; then
		EGRESSGUARD_IMAGE_CHECK_UNSHARED=1 exec unshare --mount --propagation private \
			sh -c 'umount /sys/fs/cgroup/unified && exec "$0" "$@"' "$self" "$@"
	fi
fi

ns=egimg$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d)
cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# The lab: a namespace with a veth pair, so there is an uplink to throttle.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add up0 type veth peer name peer0
ip -n "$ns" addr add 198.18.0.1/30 dev up0
ip -n "$ns" link set up0 up
ip -n "$ns" link set peer0 up
ip -n "$ns" route add default via 198.18.0.2 dev up0

# --network ns: puts the container in the lab namespace with the namespace's
# interfaces, as --network host does on a node. Ulimits no higher than ours:
# podman's defaults exceed the hard limits of a CI container.
lim=$(ulimit -Hn)
[ "$lim" = unlimited ] && lim=1048576
pm() {
	podman --root "$work/root" --runroot "$work/run" --storage-driver vfs \
		--cgroup-manager cgroupfs --events-backend file "$@"
}
run() {
	pm run --rm --cgroups=disabled --network "ns:/run/netns/$ns" \
		--cap-drop ALL --cap-add NET_ADMIN,NET_RAW,SYS_PTRACE,DAC_READ_SEARCH \
		--ulimit "nofile=$lim:$lim" --ulimit nproc=4096:4096 \
		--tmpfs /var/lib/egressguard --tmpfs /run/egressguard \
		"oci-archive:$archive" "$@"
}
failed=0
fail() {
	echo "FAIL: $*" >&2
	failed=1
}

echo "== podman run ... doctor --json"
run doctor --json >"$work/doctor.json" || true
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
for c in r["checks"]:
    print("%-6s %s: %s" % (c["status"], c["name"], c["detail"]))
caps = [c for c in r["checks"] if c["name"] == "capabilities"]
assert caps and caps[0]["status"] == "ok", "capabilities check not ok"
' "$work/doctor.json" || fail "doctor --json in the image"

echo "== podman run ... throttle, then tc"
# One container per command as operators would run them; the state lives in
# the container's tmpfs, so the release goes by --all on the same interface.
run throttle --interface up0 --rate 1mbit --ttl 5m || fail "throttle exited $?"
# The layout: a classifier on up0's clsact egress hook redirecting to the
# shaping device eg-up0, which holds the HTB; the root of up0 is untouched.
tc -n "$ns" qdisc show dev up0
tc -n "$ns" filter show dev up0 egress
tc -n "$ns" qdisc show dev eg-up0
tc -n "$ns" class show dev eg-up0
tc -n "$ns" qdisc show dev up0 | grep -q '^qdisc noqueue 0: root' || fail "up0's root qdisc changed by the throttle"
tc -n "$ns" filter show dev up0 egress | grep -q 'mirred (Egress Redirect to device eg-up0)' ||
	fail "tc shows no egressguard classifier redirecting to eg-up0 after throttle"
tc -n "$ns" qdisc show dev eg-up0 | grep -q '^qdisc htb e9: root' || fail "tc shows no egressguard htb on eg-up0 after throttle"
tc -n "$ns" class show dev eg-up0 | grep -q 'rate 1Mbit' || fail "tc shows no 1Mbit class after throttle"

echo "== podman run ... unthrottle, then tc"
# The throttle's record was in the first container's tmpfs; a fresh
# container adopts our layout by its handles and releases it.
run unthrottle --interface up0 || fail "unthrottle exited $?"
tc -n "$ns" qdisc show dev up0
if ip -n "$ns" link show dev eg-up0 >/dev/null 2>&1; then fail "shaping device eg-up0 still there after unthrottle"; fi
if tc -n "$ns" filter show dev up0 egress | grep -q 'eg-up0'; then fail "classifier still installed after unthrottle"; fi

echo "== podman run -d ... (the DaemonSet's command: run --config /etc/egressguard/config.yaml)"
# The DaemonSet's way: config and token read-only, state and socket writable.
mkdir -p "$work/etc"
cat >"$work/etc/config.yaml" <<CONFIG
mode: observe
node_name: image-check
interfaces: [up0]
listen: 127.0.0.1:9466
CONFIG
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$work/etc/webhook.token"
chmod 0400 "$work/etc/webhook.token"
pm run -d --name "$ns" --cgroups=disabled --network "ns:/run/netns/$ns" \
	--cap-drop ALL --cap-add NET_ADMIN,NET_RAW,SYS_PTRACE,DAC_READ_SEARCH --read-only \
	--ulimit "nofile=$lim:$lim" --ulimit nproc=4096:4096 \
	-v "$work/etc:/etc/egressguard:ro" --tmpfs /var/lib/egressguard --tmpfs /run/egressguard \
	"oci-archive:$archive" run --config /etc/egressguard/config.yaml >/dev/null
get() {
	ip netns exec "$ns" python3 -c '
import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:9466" + sys.argv[1], timeout=2).read().decode())
' "$1" 2>/dev/null
}
ready=no
for _ in $(seq 1 50); do
	if get /readyz >/dev/null; then ready=yes && break; fi
	sleep 0.2
done
if [ "$ready" = yes ]; then
	echo "/readyz: $(get /readyz)"
	get /metrics | grep -E '^egressguard_(build_info|interface_verdict\{.*state="clean"|action_budget_remaining)' ||
		fail "agent in the image: /metrics lacks the expected series"
else
	fail "agent in the image never became ready"
fi
pm logs "$ns" 2>&1 | head -n 8
pm stop -t 10 "$ns" >/dev/null || fail "podman stop"
pm rm "$ns" >/dev/null || true

[ "$failed" = 0 ] && echo "== image-check: ok" || echo "== image-check: FAILED"
exit "$failed"
