#!/usr/bin/env bash
# `make bench-http`: how close commerce-http comes to talking to PostgreSQL
# directly.  Same machine, same cluster, same run:
#   1. GET /api/products/{id} with wrk (64 connections) against pgbench
#      (64 clients, -M prepared) running SELECT * FROM commerce.get_product(:id);
#   2. the sold-out coupon path: POST /api/coupons/issue on an exhausted coupon
#      with wrk + lua against pgbench calling commerce.issue_coupon.
# Each HTTP path runs twice in the same run: against a daemon with --auth
# none and against one verifying HS256 JWTs (every wrk request carries the
# token of the user it acts for, minted by frontend/commerce-token), so the
# cost of authentication is measured, not guessed.
# Prints the rates, auth / no auth, and the ratio daemon/direct.  Then the
# flash-sale floods of issue 3's bar through the daemon (tests/http/flood.py,
# one connection per user, all at once): 10,000 users for a coupon of 1,000,
# and 5,000 orders for a product with stock 100 (BENCH_FLOODS=0 skips them).
#
# pgbench 15 aborts a client at its first SQL error and every call on the
# sold-out path is one, so its script calls issue_coupon through a small
# PL/pgSQL wrapper that catches the error (one subtransaction per call).
#
# Environment: BENCH_SECONDS (default 10), BENCH_PG_PORT (5444),
# BENCH_HTTP_PORT (18095; the daemon with auth on the port after it),
# BENCH_THREADS (daemon threads, default cores), BENCH_DAEMON_ARGS (more
# options for both daemons, e.g. "--access-log /tmp/access.log").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${BENCH_SECONDS:-10}
pg_dir=$root/.run/bench-http
pg_port=${BENCH_PG_PORT:-5444}
http_port=${BENCH_HTTP_PORT:-18095}
threads=${BENCH_THREADS:-$(nproc)}
users=10000
work=$(mktemp -d)

make -s -C frontend
cluster_env=$(scripts/pg-cluster.sh fresh "$pg_dir" "$pg_port") || exit 1
eval "$cluster_env"
export PGDATABASE=postgres

auth_port=$((http_port + 1))
daemon_pids=()
cleanup() {
	for pid in "${daemon_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
	scripts/pg-cluster.sh stop "$pg_dir" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

psql -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION pg_commerce;
CREATE ROLE commerce_http LOGIN IN ROLE commerce_api;
SELECT count(commerce.create_user('bench-' || g)) FROM generate_series(1, $users) g;
SELECT commerce.create_product('bench-' || g, 1000 + g, 1000000, 'bench') FROM generate_series(1, 100) g;
SELECT count(commerce.charge_balance(u, 1000000)) FROM generate_series(1, $users) u;
-- product 101: the hot one of the order flood
SELECT commerce.create_product('bench-hot', 1000, 100, 'bench', 16);
-- coupon 2: the coupon flood's 1,000 units
-- coupon 1: one unit, already taken by user 1: every further request is "sold out"
SELECT commerce.create_coupon('BENCH-SOLD-OUT', 'fixed', 100, 1);
SELECT commerce.issue_coupon(1, 1);
SELECT commerce.create_coupon('BENCH-FLOOD', 'fixed', 100, 1000);
CREATE FUNCTION public.bench_issue(u bigint, c bigint) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM commerce.issue_coupon(u, c);
	RETURN 'issued';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
\$\$;
SQL

head -c 48 /dev/urandom >"$work/jwt.key"
frontend/commerce-token --key "$work/jwt.key" --ttl 86400 --users "1-$users" >"$work/tokens.txt"
start_daemon() {   # port, options...
	local port=$1
	shift
	# shellcheck disable=SC2086
	frontend/commerce-http --listen "127.0.0.1:$port" --threads "$threads" "$@" ${BENCH_DAEMON_ARGS:-} \
		--db "host=$PGHOST port=$PGPORT user=commerce_http dbname=postgres" 2>>"$work/daemon.log" &
	daemon_pids+=($!)
	for _ in $(seq 1 100); do
		curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
		sleep 0.1
	done
}
start_daemon "$http_port" --auth none
start_daemon "$auth_port" --jwt-key "$work/jwt.key"

# tokens[u] is user u's bearer token (sent to both daemons; --auth none ignores it)
tokens_lua="local tokens = {}
for line in io.lines('$work/tokens.txt') do tokens[#tokens + 1] = line end"
cat >"$work/get_product.lua" <<LUA
$tokens_lua
request = function()
	local auth = {["Authorization"] = "Bearer " .. tokens[math.random(1, $users)]}
	return wrk.format("GET", "/api/products/" .. math.random(1, 100), auth)
end
LUA
cat >"$work/issue.lua" <<LUA
$tokens_lua
request = function()
	local u = math.random(2, $users)
	local body = '{"userId":' .. u .. ',"couponId":1}'
	return wrk.format("POST", "/api/coupons/issue",
		{["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[u]}, body)
end
LUA
printf '\\set id random(1, 100)\nSELECT * FROM commerce.get_product(:id);\n' >"$work/get_product.sql"
printf '\\set uid random(2, %d)\nSELECT public.bench_issue(:uid, 1);\n' "$users" >"$work/issue.sql"

wrk_rate() {   # lua port
	wrk -t2 -c64 -d"${seconds}s" -s "$1" "http://127.0.0.1:$2" >"$work/wrk.out"
	grep -q "Non-2xx" "$work/wrk.out" && grep "Non-2xx" "$work/wrk.out" >&2
	awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out"
}
pgbench_rate() {   # script
	pgbench -n -M prepared -c 64 -j 2 -T "$seconds" -f "$1" >"$work/pgbench.out" 2>&1
	awk '/^tps = / {print $3}' "$work/pgbench.out"
}

echo "bench-http: ${seconds}s per run, 64 connections / 64 clients, daemon threads: $threads, cores: $(nproc)"
# short warm-up for every side
wrk -t2 -c64 -d2s -s "$work/get_product.lua" "http://127.0.0.1:$http_port" >/dev/null
wrk -t2 -c64 -d2s -s "$work/get_product.lua" "http://127.0.0.1:$auth_port" >/dev/null
pgbench -n -M prepared -c 64 -j 2 -T 2 -f "$work/get_product.sql" >/dev/null 2>&1

http_get=$(wrk_rate "$work/get_product.lua" "$http_port")
auth_get=$(wrk_rate "$work/get_product.lua" "$auth_port")
pg_get=$(pgbench_rate "$work/get_product.sql")
http_issue=$(wrk_rate "$work/issue.lua" "$http_port" 2>"$work/non2xx")
auth_issue=$(wrk_rate "$work/issue.lua" "$auth_port" 2>"$work/non2xx-auth")
pg_issue=$(pgbench_rate "$work/issue.sql")
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$auth_port/api/coupons/issue" \
	-H "Authorization: Bearer $(sed -n 2p "$work/tokens.txt")" \
	-H 'Content-Type: application/json' -d '{"userId":2,"couponId":1}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
printf '%-34s %10s %10s %9s %10s %12s\n' "path" "no auth" "JWT" "JWT/none" "direct" "JWT/direct"
printf '%-34s %10.0f %10.0f %9s %10.0f %12s\n' "GET /api/products/{id}" "$http_get" "$auth_get" \
	"$(ratio "$auth_get" "$http_get")" "$pg_get" "$(ratio "$auth_get" "$pg_get")"
printf '%-34s %10.0f %10.0f %9s %10.0f %12s\n' "POST /api/coupons/issue (sold out)" "$http_issue" "$auth_issue" \
	"$(ratio "$auth_issue" "$http_issue")" "$pg_issue" "$(ratio "$auth_issue" "$pg_issue")"
echo "(rates per second: daemon requests, pgbench transactions; sold-out answers: HTTP $status;" \
	"$(cat "$work/non2xx-auth"))"

if [ "${BENCH_FLOODS:-1}" != 0 ]; then
	echo
	echo "flood: 10000 users at once, POST /api/coupons/issue, coupon of 1000"
	export FLOOD_TOKENS=$work/tokens.txt   # the floods go to the daemon with auth
	python3 tests/http/flood.py coupon "http://127.0.0.1:$auth_port" 2 1 10000
	echo "  issued in the database: $(psql -XAtq -c 'SELECT count(*) FROM commerce.issued_coupons WHERE coupon_id = 2')"
	echo "flood: 5000 orders at once, POST /api/orders, product of stock 100"
	python3 tests/http/flood.py order "http://127.0.0.1:$auth_port" 101 1 5000
	echo "  stock left: $(psql -XAtq -c 'SELECT stock FROM commerce.get_product(101)')," \
		"paid orders of it: $(psql -XAtq -c "SELECT count(*) FROM commerce.order_items WHERE product_id = 101")"
	echo "  daemon retries after deadlocks: $(curl -s "http://127.0.0.1:$auth_port/metrics" | awk '/^commerce_http_db_retries_total/ {print $2}')"
fi
