#!/bin/sh
# egressguard pre-remove (deb prerm and rpm %preun).
# On removal (not upgrade): stop the agent, then remove any mitigation still
# installed, since no agent will be left to release it when its TTL ends.
set -e

remove=no
case "${1:-}" in
remove | deconfigure | 0) remove=yes ;;
esac
[ "$remove" = yes ] || exit 0

if [ -d /run/systemd/system ]; then
	systemctl stop egressguard.service || true
fi
if command -v systemctl >/dev/null 2>&1; then
	# Drops the admin's enablement links, which would dangle without the unit.
	systemctl --no-reload disable egressguard.service >/dev/null 2>&1 || true
fi
if command -v egressguard >/dev/null 2>&1; then
	egressguard unthrottle --all ||
		echo "egressguard: unthrottle --all failed; check 'tc qdisc show'" >&2
fi
exit 0
