#!/bin/sh
# Runs the maintainer scripts under dash -e for every deb and rpm action, in a
# private mount namespace with tmpfs over /etc and /run and a fake systemctl,
# and checks what each one did. Needs root (unshare -m). Changes nothing on
# the host.
#
#   packaging/test-scripts.sh
set -eu

if [ "${EGP_IN_NS:-}" != 1 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "test-scripts: skipped, needs root for unshare -m" >&2
		exit 0
	fi
	EGP_IN_NS=1 exec unshare -m "$0" "$@"
fi

S=$(cd "$(dirname "$0")" && pwd)/scripts
work=$(mktemp -d /tmp/egp-scripts.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
cat >"$work/bin/systemctl" <<FAKE
#!/bin/sh
echo "\$*" >>"$work/systemctl.log"
FAKE
chmod 0755 "$work/bin/systemctl"
# The user and group databases come along: the postinst adds a group.
mkdir -p "$work/etc"
for f in passwd group shadow gshadow login.defs nsswitch.conf; do
	[ -e "/etc/$f" ] && cp -p "/etc/$f" "$work/etc/"
done
mount -t tmpfs egp-etc /etc
cp -p "$work"/etc/* /etc/
mount -t tmpfs egp-run /run
# dpkg and rpm run maintainer scripts with the sbin directories on PATH.
PATH=$work/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

failed=0
fail() {
	echo "FAIL: $*" >&2
	failed=1
}
# step SCRIPT ARGS... runs one script and leaves its systemctl calls in $calls.
step() {
	script=$1
	shift
	: >"$work/systemctl.log"
	dash -e "$S/$script" "$@" || fail "$script $*: exit $?"
	calls=$(tr '\n' ';' <"$work/systemctl.log")
}
expect_calls() {
	[ "$calls" = "$1" ] || fail "$2: systemctl calls \"$calls\", want \"$1\""
}

token=/etc/egressguard/webhook.token

# Without systemd as PID 1 (containers, CI): nothing is called.
step postinstall.sh configure ""
expect_calls "" "postinst without systemd"
getent group egressguard-webhook >/dev/null || fail "postinst did not create group egressguard-webhook"
[ "$(stat -c '%a %U %G' "$token")" = "640 root egressguard-webhook" ] ||
	fail "token is $(stat -c '%a %U %G' "$token"), want 640 root egressguard-webhook"
grep -Eq '^[0-9a-f]{64}$' "$token" || fail "token is not 64 hex digits"
first=$(cat "$token")
step postinstall.sh configure 0.0.9
[ "$(cat "$token")" = "$first" ] || fail "postinst replaced an existing token"
# An upgrade from a release whose token was root-only shares it with the group;
# a mode the admin chose stays.
chgrp root "$token" && chmod 0600 "$token"
step postinstall.sh configure 0.0.9
[ "$(stat -c '%a %G' "$token")" = "640 egressguard-webhook" ] ||
	fail "upgrade left the old root-only token at $(stat -c '%a %G' "$token")"
chmod 0400 "$token"
step postinstall.sh configure 0.0.9
[ "$(stat -c '%a' "$token")" = 400 ] || fail "upgrade changed the admin's token mode 0400"
chmod 0640 "$token"

mkdir -p /run/systemd/system /run/egressguard
step postinstall.sh configure ""
expect_calls "daemon-reload;" "deb postinst install"
step postinstall.sh configure 0.0.9
expect_calls "daemon-reload;try-restart egressguard.service;" "deb postinst upgrade"
step postinstall.sh 1
expect_calls "daemon-reload;" "rpm %post install"
step postinstall.sh 2
expect_calls "daemon-reload;try-restart egressguard.service;" "rpm %post upgrade"

step preremove.sh upgrade 0.2.0
expect_calls "" "deb prerm upgrade"
step preremove.sh 1
expect_calls "" "rpm %preun upgrade"
step preremove.sh remove
expect_calls "stop egressguard.service;--no-reload disable egressguard.service;" "deb prerm remove"
step preremove.sh 0
expect_calls "stop egressguard.service;--no-reload disable egressguard.service;" "rpm %preun erase"

step postremove.sh remove
expect_calls "daemon-reload;" "deb postrm remove"
[ -e "$token" ] || fail "deb postrm remove deleted the token"
step postremove.sh 0
[ -e "$token" ] || fail "rpm %postun deleted the token"
step postremove.sh purge
[ ! -e /etc/egressguard ] || fail "deb postrm purge left /etc/egressguard"
[ ! -e /run/egressguard ] || fail "deb postrm purge left /run/egressguard"

# set -e holds: a postinst that cannot write the token fails the install.
mount -o remount,ro /etc
if dash -e "$S/postinstall.sh" configure "" 2>/dev/null; then
	fail "postinst succeeded on a read-only /etc"
fi

[ "$failed" = 0 ] && echo "test-scripts: ok"
exit "$failed"
