#!/bin/sh
# Builds the egressguard deb and rpm into dist/.
#
#   packaging/build.sh VERSION
#
# VERSION is a semver such as 0.1.0 or v0.1.0-rc.1 (a leading "v" is
# dropped). The static binary is built from ./cmd/egressguard with
# -X main.version=VERSION unless EGRESSGUARD_BIN names one already built.
# GOARCH selects the architecture (default: the host's).
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: packaging/build.sh VERSION" >&2
	exit 2
fi
VERSION=${1#v}
case "$VERSION" in
[0-9]*) ;;
*)
	echo "packaging/build.sh: VERSION \"$1\": want a semver like 0.1.0" >&2
	exit 2
	;;
esac

cd "$(dirname "$0")/.."
mkdir -p dist

GOARCH=${GOARCH:-$(go env GOARCH)}
if [ -z "${EGRESSGUARD_BIN:-}" ]; then
	EGRESSGUARD_BIN=dist/egressguard
	CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH go build -trimpath \
		-ldflags "-s -w -X main.version=$VERSION" \
		-o "$EGRESSGUARD_BIN" ./cmd/egressguard
fi

# One changelog entry for this version, so the deb's changelog.Debian.gz
# always names the version it ships; the history is in git.
date=$(date -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"} +%Y-%m-%dT%H:%M:%SZ)
cat >dist/changelog.yaml <<CHANGELOG
- semver: "$VERSION"
  date: "$date"
  packager: "egressguard maintainers <egressguard@example.org>"
  deb:
    urgency: medium
    distributions: [stable]
  changes:
    - note: "egressguard $VERSION; changes are in the git history"
CHANGELOG

export VERSION GOARCH EGRESSGUARD_BIN
for packager in deb rpm; do
	go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2 pkg \
		--config packaging/nfpm.yaml --packager "$packager" --target dist/
done
