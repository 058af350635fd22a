#!/bin/sh
# egressguard post-install (deb postinst and rpm %post).
# Creates the webhook token when missing and tells a running systemd about
# the unit. It never enables or starts the service and never changes the
# configured mode; on upgrade it restarts the agent only if it was running.
set -e

token=/etc/egressguard/webhook.token

if [ ! -e "$token" ]; then
	umask 077
	mkdir -p /etc/egressguard
	# 32 random bytes as 64 hex digits, written beside and renamed so a
	# half-written token is never read.
	od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$token.new"
	echo >>"$token.new"
	chmod 0600 "$token.new"
	mv "$token.new" "$token"
fi

# deb: "configure <old-version>" on upgrade; rpm: $1 is 2 or more on upgrade.
upgrade=no
case "${1:-}" in
configure) [ -n "${2:-}" ] && upgrade=yes ;;
[2-9] | [1-9][0-9]*) upgrade=yes ;;
esac

# Only where systemd is PID 1: not in containers, chroots or CI images.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if [ "$upgrade" = yes ]; then
		systemctl try-restart egressguard.service || true
	fi
fi
exit 0
