#!/bin/sh
# Upgrade test: a node running the previous release, with an edited config and
# a live manual throttle, upgraded to this tree's package.
#
#   packaging/upgrade-test.sh PREVIOUS      (a commit or tag; make upgrade-test)
#
# For the deb and then the rpm (rpm installs with a private database, so a
# Debian host can run it): builds the package of PREVIOUS (git archive, no
# checkout) and of the tree, installs the old one, edits its config
# (throttle.rate), throttles up0 of a throwaway network namespace with the
# old binary, upgrades, and checks: the config edit survived (the new default
# lands beside it), the throttle is still in the kernel as tc shows it, the
# new `egressguard status` reads the old state file, the token was shared with
# egressguard-webhook, and the new binary releases the old throttle cleanly.
# Then it removes the package. Needs root; refuses to run where egressguard is
# installed or /var/lib/egressguard exists (it would be changed).
set -eu

if [ $# -ne 1 ]; then
	echo "usage: packaging/upgrade-test.sh PREVIOUS" >&2
	exit 2
fi
previous=$1
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "upgrade-test: needs root (dpkg, rpm, tc)" >&2; exit 2; }
if dpkg -s egressguard >/dev/null 2>&1 || [ -e /usr/bin/egressguard ]; then
	echo "upgrade-test: egressguard is installed here; refusing to replace it" >&2
	exit 2
fi
if [ -e /var/lib/egressguard ] || [ -e /etc/egressguard ]; then
	echo "upgrade-test: /var/lib/egressguard or /etc/egressguard exists; refusing to change it" >&2
	exit 2
fi
if ! old_commit=$(git rev-parse --short --verify --quiet "$previous^{commit}"); then
	echo "upgrade-test: PREVIOUS \"$previous\": not a commit here (a shallow clone? fetch more history)" >&2
	exit 2
fi
# Package versions that sort old < new for dpkg and rpm alike; the commits
# are what differ.
old_version=0.0.1
new_version=0.0.2

work=$(mktemp -d /tmp/egupgrade.XXXXXX)
ns=egupg$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
rpmdb=$work/rpmdb
# The packages keep their system group on removal (Debian practice); a test
# run removes it again when it created it.
had_group=no
getent group egressguard-webhook >/dev/null && had_group=yes
cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	dpkg --purge egressguard >/dev/null 2>&1 || true
	rpm --dbpath "$rpmdb" -e --nodeps egressguard >/dev/null 2>&1 || true
	rm -rf /var/lib/egressguard /etc/egressguard /run/egressguard "$work"
	[ "$had_group" = yes ] || groupdel egressguard-webhook 2>/dev/null || true
}
trap cleanup EXIT

failed=0
fail() {
	echo "FAIL: $*" >&2
	failed=1
}
section() { printf '\n== %s\n' "$*"; }

section "build the previous release ($old_commit) as $old_version and this tree as $new_version"
mkdir -p "$work/old"
git archive "$old_commit" | tar -x -C "$work/old"
(cd "$work/old" && packaging/build.sh "$old_version" >/dev/null)
packaging/build.sh "$new_version" >/dev/null
mkdir -p "$work/pkgs"
cp "$work"/old/dist/egressguard_"$old_version"*.deb "$work"/old/dist/egressguard-"$old_version"*.rpm "$work/pkgs/"
cp dist/egressguard_"$new_version"*.deb dist/egressguard-"$new_version"*.rpm "$work/pkgs/"
ls -l "$work/pkgs"

# The lab: up0 in a namespace of our own, so the throttle touches nothing else.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add up0 type veth peer name peer0
ip -n "$ns" addr add 198.18.0.1/30 dev up0
ip -n "$ns" link set up0 up
ip -n "$ns" link set peer0 up
ip -n "$ns" route add default via 198.18.0.2 dev up0
eg() { ip netns exec "$ns" /usr/bin/egressguard "$@"; }

# check_upgraded KIND: what must hold after the upgrade.
check_upgraded() {
	kind=$1
	out=$(/usr/bin/egressguard version)
	echo "version: $out"
	echo "$out" | grep -qF "$new_version" || fail "$kind: version after upgrade: $out"
	grep -q '^  rate: 3mbit  # edited before the upgrade$' /etc/egressguard/config.yaml ||
		fail "$kind: the config edit did not survive"
	# The throttle as the old release left it: a root HTB on up0 (releases
	# before the clsact layout) or the shaping device eg-up0 (since).
	layout_dev=up0
	ip -n "$ns" link show dev eg-up0 >/dev/null 2>&1 && layout_dev=eg-up0
	tc -n "$ns" qdisc show dev "$layout_dev"
	tc -n "$ns" class show dev "$layout_dev"
	tc -n "$ns" qdisc show dev "$layout_dev" | grep -q '^qdisc htb e9: root' || fail "$kind: throttle gone after upgrade"
	tc -n "$ns" class show dev "$layout_dev" | grep -q 'rate 3Mbit' || fail "$kind: throttled class not at 3Mbit after upgrade"
	eg status --json >"$work/status.json" || fail "$kind: status exited $?"
	python3 - "$work/status.json" <<'PY' || fail "$kind: new status does not read the old state file"
import json, sys
st = json.load(open(sys.argv[1]))
ms = [m for m in st["mitigations"] if m["interface"] == "up0"]
assert len(ms) == 1, st
m = ms[0]
assert m["reason"] == "manual" and m["rate_bps"] == 3000000 and m["expires"], m
print("status after upgrade: up0 %s, %d bit/s, reason %s, since %s, expires %s" %
      (m["scope"], m["rate_bps"], m["reason"], m["since"], m["expires"]))
PY
	tok=$(stat -c '%a %U %G' /etc/egressguard/webhook.token)
	echo "token: $tok"
	[ "$tok" = "640 root egressguard-webhook" ] || fail "$kind: token after upgrade is $tok"
	eg unthrottle --interface up0 || fail "$kind: new unthrottle of the old throttle exited $?"
	tc -n "$ns" qdisc show dev up0
	if tc -n "$ns" qdisc show dev up0 | grep -q 'htb e9:'; then fail "$kind: throttle left after release"; fi
	if ip -n "$ns" link show dev eg-up0 >/dev/null 2>&1; then fail "$kind: shaping device left after release"; fi
	eg status --json | python3 -c 'import json,sys; st=json.load(sys.stdin); assert not st["mitigations"], st' ||
		fail "$kind: state still holds a mitigation after release"
}

# install_old KIND: after the old package is in, edit the config and throttle.
prepare_old() {
	kind=$1
	/usr/bin/egressguard version
	# The old package made the token root-only.
	stat -c 'old token: %a %U %G' /etc/egressguard/webhook.token
	sed -i 's/^  rate: 1mbit.*$/  rate: 3mbit  # edited before the upgrade/' /etc/egressguard/config.yaml
	grep -q '^  rate: 3mbit' /etc/egressguard/config.yaml || fail "$kind: could not edit throttle.rate"
	eg throttle --interface up0 --ttl 30m || fail "$kind: old throttle exited $?"
	echo "old state file: $(cat /var/lib/egressguard/state.json | tr -d '\n' | cut -c1-200)..."
}

section "deb: install $old_version, edit, throttle"
dpkg -i "$work"/pkgs/egressguard_"$old_version"*.deb >/dev/null
prepare_old deb
section "deb: upgrade to $new_version (apt's defaults: keep the edited conffile)"
dpkg -i --force-confdef --force-confold "$work"/pkgs/egressguard_"$new_version"*.deb
if ! cmp -s "$work/old/packaging/config.yaml" packaging/config.yaml; then
	[ -f /etc/egressguard/config.yaml.dpkg-dist ] || fail "deb: the new default config is not beside the edited one"
	ls -l /etc/egressguard/
fi
check_upgraded deb
dpkg --purge egressguard >/dev/null
rm -rf /var/lib/egressguard

section "rpm: install $old_version, edit, throttle (private rpm database, --nodeps: this host's packages are debs)"
mkdir -p "$rpmdb"
rpm --dbpath "$rpmdb" --initdb
rpm --dbpath "$rpmdb" -i --nodeps "$work"/pkgs/egressguard-"$old_version"*.rpm
prepare_old rpm
section "rpm: upgrade to $new_version"
rpm --dbpath "$rpmdb" -U --nodeps "$work"/pkgs/egressguard-"$new_version"*.rpm
rpm --dbpath "$rpmdb" -q egressguard
if ! cmp -s "$work/old/packaging/config.yaml" packaging/config.yaml; then
	[ -f /etc/egressguard/config.yaml.rpmnew ] || fail "rpm: the new default config is not beside the edited one"
	ls -l /etc/egressguard/
fi
check_upgraded rpm
rpm --dbpath "$rpmdb" -e --nodeps egressguard
[ ! -e /usr/bin/egressguard ] || fail "rpm -e left /usr/bin/egressguard"

if [ "$failed" = 0 ]; then
	section "upgrade-test: ok ($old_commit -> tree)"
else
	section "upgrade-test: FAILED"
fi
exit "$failed"
