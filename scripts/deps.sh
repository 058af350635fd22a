#!/bin/sh
# Makes sure the tools a make target runs are installed: as root with
# apt-get it installs the missing Debian packages (as CI does); otherwise it
# stops and prints the one apt-get line to run.
#
#   scripts/deps.sh demo|test|image
#
# Go is not taken from Debian (its golang-go is older than go.mod needs):
# without a Go toolchain on PATH it stops and says so.
set -eu

case "${1:-}" in
# command:package pairs (a command present means its package is), or
# /path:package for a package that installs no command.
demo) need="ip:iproute2 tc:iproute2 nft:nftables iperf3:iperf3 python3:python3" ;;
# gcc and the C headers: go test -race needs cgo.
test) need="ip:iproute2 tc:iproute2 nft:nftables iperf3:iperf3 python3:python3 tcpdump:tcpdump
	promtool:prometheus amtool:prometheus-alertmanager git:git gcc:gcc /usr/include/stdio.h:libc6-dev" ;;
image) need="buildah:buildah podman:podman ip:iproute2 python3:python3" ;;
*)
	echo "usage: scripts/deps.sh demo|test|image" >&2
	exit 2
	;;
esac

missing=""
for pair in $need; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	case "$cmd" in
	/*) present() { [ -e "$1" ]; } ;;
	*) present() { command -v "$1" >/dev/null 2>&1; } ;;
	esac
	if ! present "$cmd"; then
		case " $missing " in
		*" $pkg "*) ;;
		*) missing="$missing $pkg" ;;
		esac
	fi
done
missing=${missing# }
line="apt-get install -y --no-install-recommends $missing"

if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "make $1: installing $missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086 # one word per package
		apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $missing >/dev/null
	else
		echo "make $1: missing packages: $missing" >&2
		echo "run as root:  $line" >&2
		exit 1
	fi
fi

if ! command -v go >/dev/null 2>&1; then
	echo "make $1: no Go toolchain on PATH (go.mod needs $(sed -n 's/^go //p' go.mod) or later);" >&2
	echo "install it from the Go project's release archive into /usr/local/go, then run make $1 again" >&2
	exit 1
fi
