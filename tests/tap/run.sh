#!/usr/bin/env bash
# Perl TAP suite (PostgreSQL::Test::Cluster + pgbench): each test starts its
# own throw-away node (Unix socket, ports 5461-5464, 5467), floods the API at 64
# clients and then checks every invariant of [docs/design.md](docs/design.md#invariants) (invariants.sql).
#
#   tests/tap/run.sh [prove options] [test files]
#
# Needs pg_commerce installed (make install).  initdb refuses root, so prove
# runs as the postgres user in .run/tap (its tmp_check holds the nodes and
# their logs; a failed run leaves them there).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
pgbin=/usr/lib/postgresql/15/bin
pgxs=/usr/lib/postgresql/15/lib/pgxs
work=$top/.run/tap

rm -rf "$work"
mkdir -p "$work"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$work"
	as_pg=(runuser -u postgres --)
fi

# test files named relative to the caller's directory: make them absolute
args=()
for a in "$@"; do
	if [ -f "$a" ]; then args+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")"); else args+=("$a"); fi
done
if [ ${#args[@]} -eq 0 ] || [[ ${args[-1]} == -* ]]; then
	args+=("$top"/tests/tap/*.pl)
fi

cd "$work"
exec "${as_pg[@]}" env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGHOSTADDR \
	PATH="$pgbin:$PATH" \
	PERL5LIB="$pgxs/src/test/perl:$top/tests/tap" \
	PG_REGRESS="$pgxs/src/test/regress/pg_regress" \
	TESTDIR="$work" \
	PG_TEST_NOCLEAN="${PG_TEST_NOCLEAN:-}" \
	prove --timer "${args[@]}"
