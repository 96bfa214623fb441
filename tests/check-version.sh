#!/usr/bin/env bash
# The one version string agrees everywhere it is written (Makefile, control
# file, META.json, the OpenAPI description, the compose file's images), and
# the upgrade scripts form one unbroken chain from the first released
# version (sql/pg_commerce--0.1.0.sql) to it, with no script off the chain.
# (That the chain gives exactly the fresh schema is the regression test
# 09_upgrade's job.)
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-version: $*" >&2; exit 1; }

version=$(sed -n 's/^EXTVERSION = //p' Makefile)
[ -n "$version" ] || fail "no EXTVERSION in the Makefile"
control=$(sed -n "s/^default_version = '\(.*\)'/\1/p" extension/pg_commerce.control)
meta=$(python3 -c 'import json; m = json.load(open("META.json")); assert m["provides"]["pg_commerce"]["version"] == m["version"]; print(m["version"])') \
	|| fail "META.json: provides.pg_commerce.version differs from version"
openapi=$(sed -n 's/^  version: //p' docs/openapi.yaml)
echo "Makefile $version, control $control, META.json $meta, openapi.yaml $openapi"
for v in "$control" "$meta" "$openapi"; do
	[ "$v" = "$version" ] || fail "version $v differs from the Makefile's $version"
done
while read -r image; do
	[ "${image##*:}" = "$version" ] || fail "docker/compose.yaml: image $image is not tagged $version"
done < <(sed -n 's/^ *image: \(pg_commerce-.*\)/\1/p' docker/compose.yaml)

# walk the chain: from each version exactly one script leads on
from=0.1.0 steps=0
[ -f "sql/pg_commerce--$from.sql" ] || fail "no base script sql/pg_commerce--$from.sql"
while [ "$from" != "$version" ]; do
	next=(sql/pg_commerce--"$from"--*.sql)
	[ -e "${next[0]}" ] || fail "no upgrade script from $from (the chain stops short of $version)"
	[ ${#next[@]} -eq 1 ] || fail "more than one upgrade script from $from: ${next[*]}"
	to=${next[0]#sql/pg_commerce--"$from"--}
	to=${to%.sql}
	echo "upgrade $from -> $to"
	from=$to steps=$((steps + 1))
	[ $steps -le 100 ] || fail "the upgrade scripts loop"
done
all=$(find sql -name 'pg_commerce--*--*.sql' | wc -l)
[ "$all" -eq "$steps" ] || fail "$((all - steps)) upgrade script(s) off the chain 0.1.0 -> $version"
echo "check-version: $version, reached from 0.1.0 in $steps steps"
