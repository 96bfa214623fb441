#!/usr/bin/env bash
# The pinned schemathesis release tests/schemathesis uses, in a virtual
# environment of its own in a per-user cache (Debian's python3 with
# python3-venv; PyPI).  Every dependency is pinned too, by
# tests/schemathesis/constraints.txt (pip freeze of a working install), so a
# new release of one of them cannot change the run.  Prints the path of the
# `st` command on its last line.
#
# Environment: SCHEMATHESIS_VERSION (pinned below), SCHEMATHESIS_CACHE
# (default $HOME/.cache/pg_commerce/schemathesis).
set -euo pipefail

version=${SCHEMATHESIS_VERSION:-4.32.5}
constraints=$(cd "$(dirname "$0")/.." && pwd)/tests/schemathesis/constraints.txt
cache=${SCHEMATHESIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg_commerce/schemathesis}
venv=$cache/$version
st=$venv/bin/st

# .installed is written last: a venv cut off half-way is built again
if [ -f "$venv/.installed" ]; then
	echo "$st"
	exit 0
fi
echo "install-schemathesis: schemathesis $version into $venv" >&2
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -c "$constraints" "schemathesis==$version" >&2 || { rm -rf "$venv"; exit 1; }
touch "$venv/.installed"
echo "$st"
