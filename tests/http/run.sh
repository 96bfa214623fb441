#!/usr/bin/env bash
# tests/http/run.sh — commerce-http against a real cluster and the real daemon.
#
# Builds frontend/commerce-http and frontend/commerce-http-asan, starts a
# fresh private cluster (.run/http-test, port 5442) with the installed
# extension, and runs tests/http/test_http.py against each binary.  Needs the
# extension installed (`make && make install` at the top level).
#
#   tests/http/run.sh            both builds
#   tests/http/run.sh plain      the optimised build only
#   tests/http/run.sh asan       the sanitizer build only
# Extra arguments after the mode go to unittest (e.g. FaultTest).
# Last line: "N passed, M failed"; exit status non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:-all}
shift || true
export HTTP_TEST_PG_DIR=${HTTP_TEST_PG_DIR:-$root/.run/http-test}
export HTTP_TEST_PG_PORT=${HTTP_TEST_PG_PORT:-5442}
export HTTP_TEST_PORT=${HTTP_TEST_PORT:-18081}
export HTTP_TEST_LOG_DIR=${HTTP_TEST_LOG_DIR:-$root/.run/http-test-logs}

case "$mode" in
all) builds="plain asan" ;;
plain|asan) builds=$mode ;;
*) sed -n '2,13p' "$0"; exit 2 ;;
esac

# warnings are errors in CI only (as for the extension)
cflags=""
[ "${CI:-}" = "true" ] && cflags="-Werror"
for b in $builds; do
	target=all
	[ "$b" = asan ] && target=asan
	make -s -C "$root/frontend" EXTRA_CFLAGS="$cflags" "$target" || { echo "0 passed, 1 failed"; exit 1; }
done

rm -rf "$HTTP_TEST_LOG_DIR"
cluster_env=$("$root/scripts/pg-cluster.sh" fresh "$HTTP_TEST_PG_DIR" "$HTTP_TEST_PG_PORT") || exit 1
eval "$cluster_env"
cleanup() { "$root/scripts/pg-cluster.sh" stop "$HTTP_TEST_PG_DIR" 2>/dev/null || true; }
trap cleanup EXIT
psql -XAtq -d postgres -v ON_ERROR_STOP=1 <<'SQL' || { echo "0 passed, 1 failed"; exit 1; }
CREATE EXTENSION pg_commerce;
CREATE ROLE commerce_http LOGIN IN ROLE commerce_api;
CREATE ROLE commerce_http_operator LOGIN IN ROLE commerce_operator;
SQL

total_pass=0 total_fail=0
for b in $builds; do
	bin=$root/frontend/commerce-http
	[ "$b" = asan ] && bin=$root/frontend/commerce-http-asan
	echo "=== tests/http against $(basename "$bin")"
	out=$(mktemp)
	HTTP_TEST_DAEMON=$bin python3 "$here/test_http.py" "$@" 2>&1 | tee "$out"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
	rm -f "$out"
	if [ -z "$line" ]; then
		total_fail=$((total_fail + 1))
	else
		total_pass=$((total_pass + ${line%% passed*}))
		f=${line#*, }
		total_fail=$((total_fail + ${f%% failed}))
	fi
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
