#!/bin/sh
# egressguard post-remove (deb postrm and rpm %postun).
# Tells a running systemd the unit is gone. On deb purge it also deletes what
# the postinst created (the webhook token) and /etc/egressguard when empty;
# /var/lib/egressguard (state and flood evidence) is kept for forensics.
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi

if [ "${1:-}" = purge ]; then
	rm -f /etc/egressguard/webhook.token /etc/egressguard/webhook.token.new
	rmdir /etc/egressguard 2>/dev/null || true
	rm -rf /run/egressguard
	if [ -d /var/lib/egressguard ]; then
		echo "egressguard: kept /var/lib/egressguard (state and flood evidence); remove it by hand" >&2
	fi
fi
exit 0
