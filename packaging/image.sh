#!/bin/sh
# Builds the egressguard OCI image from scratch with buildah: no daemon, no
# base image pulled. The image holds only the static binary.
#
#   packaging/image.sh VERSION RELEASE
#
# Writes dist/egressguard-image.tar (an OCI archive tagged
# IMAGE:RELEASE and IMAGE:VERSION, IMAGE defaulting to the name the DaemonSet
# uses) and prints its size and manifest digest. buildah keeps its storage in
# a throwaway directory (vfs driver), so nothing outside dist/ changes and no
# storage configuration of the machine is needed. The layer is written with
# timestamp 0, so the same binary gives the same digest.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: packaging/image.sh VERSION RELEASE" >&2
	exit 2
fi
VERSION=$1
RELEASE=$2
IMAGE=${IMAGE:-ghcr.io/egressguard/egressguard}
cd "$(dirname "$0")/.."

if ! command -v buildah >/dev/null 2>&1; then
	echo "packaging/image.sh: buildah missing; run: apt-get install -y buildah" >&2
	exit 1
fi

mkdir -p dist
work=$(mktemp -d)
trap 'buildah --root "$work/root" --runroot "$work/run" --storage-driver vfs rm --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
ctx=$work/context
mkdir -p "$ctx"
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
	-o "$ctx/egressguard" ./cmd/egressguard

b="buildah --root $work/root --runroot $work/run --storage-driver vfs"
$b bud --quiet --timestamp 0 --layers=false --build-arg VERSION="$VERSION" \
	-f packaging/image/Containerfile -t "$IMAGE:$RELEASE" -t "$IMAGE:$VERSION" "$ctx" >/dev/null
rm -f dist/egressguard-image.tar
$b push --quiet --digestfile "$work/digest" "$IMAGE:$RELEASE" "oci-archive:dist/egressguard-image.tar:$IMAGE:$RELEASE"
echo "image $IMAGE:$RELEASE ($VERSION)"
echo "digest $(cat "$work/digest")"
echo "size $(stat -c %s dist/egressguard-image.tar) bytes (OCI archive, gzip layer); binary $(stat -c %s "$ctx/egressguard") bytes"
