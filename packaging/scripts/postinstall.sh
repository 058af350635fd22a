#!/bin/sh
# egressguard post-install (deb postinst and rpm %post).
# Creates the system group egressguard-webhook and the webhook token (root,
# that group, 0640) when missing, and tells a running systemd about the unit.
# Adding the Alertmanager's user to the group lets it read the token through
# credentials_file; nobody else can. It never enables or starts the service
# and never changes the configured mode; on upgrade it restarts the agent
# only if it was running.
set -e

token=/etc/egressguard/webhook.token
group=egressguard-webhook

if ! getent group "$group" >/dev/null; then
	groupadd --system "$group"
fi

if [ ! -e "$token" ]; then
	umask 077
	mkdir -p /etc/egressguard
	# 32 random bytes as 64 hex digits, written beside and renamed so a
	# half-written token is never read.
	od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$token.new"
	echo >>"$token.new"
	chgrp "$group" "$token.new"
	chmod 0640 "$token.new"
	mv "$token.new" "$token"
elif [ "$(stat -c '%a %U %G' "$token")" = "600 root root" ]; then
	# Releases before 0.1.0 made it root-only. The group is new and holds
	# only the users an admin adds, so sharing with it widens nothing; any
	# other mode or owner is the admin's choice and stays.
	chgrp "$group" "$token"
	chmod 0640 "$token"
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
