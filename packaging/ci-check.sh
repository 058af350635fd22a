#!/bin/sh
# Builds the deb and rpm, installs the deb on this machine and checks it, then
# purges it and checks nothing it created is left. For CI (root, Debian-like,
# systemd need not be PID 1). Exit 0 when every check passes.
#
#   packaging/ci-check.sh [VERSION]     (default 0.0.0-ci)
#
# EGRESSGUARD_BIN=path uses a prebuilt binary instead of building one.
# The doctor must pass (exit 0): a warning (sch_sfq missing here) is fine, a
# failure means this kernel cannot mitigate, which the CI kernel must.
set -eu

VERSION=${1:-0.0.0-ci}
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "ci-check: needs root (dpkg -i, systemd-analyze on the installed unit)" >&2
	exit 2
fi
if dpkg -s egressguard >/dev/null 2>&1; then
	echo "ci-check: egressguard is already installed here; refusing to replace it" >&2
	exit 2
fi

failed=0
fail() {
	echo "FAIL: $*" >&2
	failed=1
}
section() { printf '\n== %s\n' "$*"; }

section "maintainer scripts under dash"
packaging/test-scripts.sh || fail "maintainer scripts"

section "build $VERSION"
rm -f dist/egressguard_*.deb dist/egressguard-*.rpm
packaging/build.sh "$VERSION"
deb=$(ls dist/egressguard_*.deb)
rpm=$(ls dist/egressguard-*.rpm)

section "rpm $rpm"
rpm -qpi "$rpm"
rpm_files=$(rpm -qpl "$rpm")
echo "$rpm_files"
for f in /usr/bin/egressguard /usr/lib/systemd/system/egressguard.service \
	/etc/egressguard/config.yaml /usr/share/egressguard/examples/prometheus.yml \
	/usr/share/egressguard/examples/alertmanager.yml /usr/share/egressguard/dashboards/egressguard.json; do
	echo "$rpm_files" | grep -qx "$f" || fail "rpm lacks $f"
done
echo "$rpm_files" | grep -q '^/usr/share/egressguard/rules/.*\.rules\.yml$' || fail "rpm has no rules"
[ "$(rpm -qpc "$rpm")" = /etc/egressguard/config.yaml ] || fail "rpm config files: $(rpm -qpc "$rpm")"
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" | grep -qx 'cn /etc/egressguard/config.yaml' ||
	fail "rpm config.yaml is not %config(noreplace)"
rpm -qp --scripts "$rpm" | grep -q 'webhook.token' || fail "rpm has no postinstall scriptlet"

section "deb $deb"
dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"
if command -v lintian >/dev/null 2>&1; then
	lintian --fail-on error,warning "$deb" || fail "lintian"
else
	echo "lintian not installed; skipped"
fi

section "install"
had_group=no
getent group egressguard-webhook >/dev/null && had_group=yes
had_state=no
[ -e /var/lib/egressguard ] && had_state=yes
dpkg -i "$deb"
purged=no
cleanup() {
	[ "$purged" = yes ] || dpkg --purge egressguard >/dev/null 2>&1 || true
	# Removal keeps the system group (Debian practice); a check run does not.
	[ "$had_group" = yes ] || groupdel egressguard-webhook 2>/dev/null || true
	# Purge keeps the state directory for forensics; a check run removes the
	# one it made, so the upgrade test after it starts from a clean node.
	[ "$had_state" = yes ] || rm -rf /var/lib/egressguard
}
trap cleanup EXIT

installed=$(dpkg -L egressguard)
for f in /usr/bin/egressguard /usr/lib/systemd/system/egressguard.service \
	/etc/egressguard/config.yaml /usr/share/doc/egressguard/copyright \
	/usr/share/doc/egressguard/changelog.Debian.gz /usr/share/lintian/overrides/egressguard \
	/usr/share/egressguard/examples/prometheus.yml /usr/share/egressguard/examples/alertmanager.yml \
	/usr/share/egressguard/dashboards/egressguard.json; do
	echo "$installed" | grep -qx "$f" || fail "dpkg -L lacks $f"
	[ -e "$f" ] || fail "$f not on disk"
done
echo "$installed" | grep -q '^/usr/share/egressguard/rules/.*\.rules\.yml$' || fail "no rules installed"
conffiles=$(dpkg-query -W -f='${Conffiles}' egressguard)
echo "conffiles:$conffiles"
echo "$conffiles" | grep -q '^ /etc/egressguard/config.yaml [0-9a-f]*$' || fail "config.yaml is not a conffile"
grep -q '^mode: observe$' /etc/egressguard/config.yaml || fail "packaged mode is not observe"
token=/etc/egressguard/webhook.token
if [ -f "$token" ]; then
	mode=$(stat -c '%a %U %G' "$token")
	echo "token: $mode"
	[ "$mode" = "640 root egressguard-webhook" ] || fail "token is $mode, want 640 root egressguard-webhook"
	grep -Eq '^[0-9a-f]{64}$' "$token" || fail "token is not 64 hex digits"
else
	fail "postinst did not create $token"
fi

section "egressguard version"
out=$(/usr/bin/egressguard version) || fail "version exited $?"
echo "$out"
echo "$out" | grep -qF "${VERSION#v}" || fail "version does not name ${VERSION#v}"

section "egressguard doctor"
rc=0
/usr/bin/egressguard doctor || rc=$?
[ "$rc" = 0 ] || fail "doctor exited $rc (a check failed)"
rc=0
/usr/bin/egressguard doctor --json >dist/doctor.json || rc=$?
[ "$rc" = 0 ] || fail "doctor --json exited $rc"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["checks"], "no checks"' dist/doctor.json ||
	fail "doctor --json is not a report"

section "systemd-analyze"
unit=/usr/lib/systemd/system/egressguard.service
systemd-analyze verify --man=no "$unit" || fail "systemd-analyze verify"
rc=0
security=$(systemd-analyze security --offline=yes --threshold=25 "$unit" 2>&1) || rc=$?
echo "$security" | grep '✗' || true
echo "$security" | tail -n 1
[ "$rc" = 0 ] || fail "exposure above 2.5"

section "purge"
dpkg --purge egressguard
purged=yes
if dpkg -s egressguard >/dev/null 2>&1; then fail "still installed after purge"; fi
for f in $installed; do
	case "$f" in
	/. | /etc | /usr | /usr/bin | /usr/lib | /usr/lib/systemd | /usr/lib/systemd/system | \
		/usr/share | /usr/share/doc | /usr/share/lintian | /usr/share/lintian/overrides) continue ;;
	esac
	if [ -e "$f" ]; then fail "left after purge: $f"; fi
done
for f in /etc/egressguard /run/egressguard; do
	if [ -e "$f" ]; then fail "left after purge: $f"; fi
done
if [ -d /var/lib/egressguard ]; then
	echo "kept by design: /var/lib/egressguard (state and evidence)"
fi
getent group egressguard-webhook >/dev/null && echo "kept by design: group egressguard-webhook"

if [ "$failed" = 0 ]; then
	section "ci-check: ok"
else
	section "ci-check: FAILED"
fi
exit "$failed"
