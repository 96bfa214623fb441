#!/usr/bin/env bash
# scripts/container-base.sh: the local base images docker/*.Dockerfile start
# FROM, built from Debian's own mirror, since no container registry is
# reachable here.  `mmdebstrap --variant=minbase bookworm` makes a root file
# system (about 20 s), `podman import` turns it into an image tagged
# debian:bookworm and debian:bookworm-slim.  Cached: once the images exist
# nothing is done (--rebuild makes them again).  Where a registry is
# reachable (Docker users), the official images of the same names serve.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/docker/containers.conf}
rebuild=0
[ "${1:-}" = --rebuild ] && rebuild=1

if [ "$rebuild" = 0 ] && podman image exists debian:bookworm && podman image exists debian:bookworm-slim; then
	echo "container-base: debian:bookworm and debian:bookworm-slim present ($(podman image inspect --format '{{.Created}}' debian:bookworm | cut -c1-19))"
	exit 0
fi
# the mirror apt uses here, else Debian's redirector
mirror=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "container-base: mmdebstrap --variant=minbase bookworm from $mirror"
mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$work/rootfs.tar" "$mirror"
podman import --quiet --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" debian:bookworm >/dev/null
podman tag debian:bookworm debian:bookworm-slim
echo "container-base: built debian:bookworm and debian:bookworm-slim"
