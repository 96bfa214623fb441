#!/usr/bin/env bash
# Install the pinned k6 release the load tests use (tests/load), built with
# `go install` from the Go module proxy into a per-user cache so that CI can
# keep it between runs.  Prints the path of the k6 binary on its last line.
#
# Environment: K6_VERSION (pinned below), K6_CACHE (default
# $HOME/.cache/pg_commerce/k6), GO (default: go on PATH, else /usr/local/go/bin/go).
set -euo pipefail

version=${K6_VERSION:-v1.8.1}
cache=${K6_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg_commerce/k6}
bindir=$cache/$version/bin
k6=$bindir/k6

if [ -x "$k6" ]; then
	echo "k6 $version already installed" >&2
	echo "$k6"
	exit 0
fi

go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$go" ] || { echo "install-k6: no Go toolchain (looked for $go)" >&2; exit 1; }

echo "install-k6: go install go.k6.io/k6@$version into $bindir (takes a few minutes)" >&2
mkdir -p "$bindir"
# The build cache and module cache stay in Go's defaults; only the binary
# lands in our versioned directory, and only once it is complete.
tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
GOBIN=$tmp GOFLAGS=-buildvcs=false CGO_ENABLED=0 "$go" install "go.k6.io/k6@$version"
mv "$tmp/k6" "$k6"
echo "install-k6: installed $("$k6" version 2>/dev/null | head -n 1)" >&2
echo "$k6"
