#!/usr/bin/env bash
# promtool for tests/alerts, without the Prometheus server: Debian ships it
# only inside package "prometheus", whose installation would also set up
# (and on a machine with an init system, start) a server on :9090.  So the
# package is downloaded and only its promtool binary unpacked into a per-user
# cache.  Prints the path of promtool on its last line.
#
# Environment: PROMTOOL_CACHE (default $HOME/.cache/pg_commerce/promtool).
# A promtool already on PATH is used as it is.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
	command -v promtool
	exit 0
fi
cache=${PROMTOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg_commerce/promtool}
bin=$cache/usr/bin/promtool
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

echo "install-promtool: unpacking promtool from Debian's prometheus package into $cache" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download writes into the current directory; it needs the package
# lists, which a fresh machine may not have yet
if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
	apt-get update -qq
	(cd "$tmp" && apt-get download prometheus >/dev/null)
fi
mkdir -p "$tmp/root"
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
mkdir -p "$cache/usr/bin"
mv "$tmp/root/usr/bin/promtool" "$bin.partial"
mv "$bin.partial" "$bin"
echo "install-promtool: $("$bin" --version 2>&1 | head -n 1)" >&2
echo "$bin"
