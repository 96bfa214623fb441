#!/usr/bin/env bash
# `make bench-sql`: pgbench figures for pg_commerce's SQL hot paths, beside
# the naive single-row PL/pgSQL design and the machine's own limits, all in
# one run on a private cluster.  A benchmark, not a test: it prints figures
# and the issue's bars, and fails only if something could not run.
#
#   scripts/bench-sql.sh
#
# Environment: BENCH_PGPORT (default 5465), BENCH_SECONDS (default 15, the
# duration of each timed case), BENCH_CASES (default: all; e.g. "insert1 order"
# runs only those cases, and prints only the bars they make up).  Logs (pgbench output, top statements of
# pg_stat_statements, wait-event samples) go to .run/bench-logs/.
#
# Cases (-M prepared throughout; users are distinct per transaction):
#   select1        SELECT 1, 16 clients                       machine limit
#   insert1        one-row INSERT commit, 64 clients          machine limit
#   issue          issue_coupon, ample quantity, 64 clients   vs naive-issue
#   issue-b128     the same with 128 buckets instead of the default
#   flood          10,000 users for 1,000 coupons, 50 clients vs naive-flood
#   hot            5,000 single units for stock 100 (16 buckets), 50 clients,
#                  decrement_stock                            vs naive-hot
#   hot-order      the same 5,000 / 100 through place_order
#   order          place_order, 1-3 items with a coupon, 64 clients
#   order-writes   the rows a 2-item order writes (order, items, payment,
#                  ledger, outbox, wallet, stock, statistics) as one plain
#                  statement: no reads, locks, checks or coupon, 64 clients.
#                  What PostgreSQL needs for the write set alone; it writes
#                  directly into commerce's tables, after the order case.
#   reject         20,000 requests for the sold-out flood coupon, 50 clients:
#                  the refusal path alone                     vs naive-reject
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
port=${BENCH_PGPORT:-5465}
secs=${BENCH_SECONDS:-15}
dir=$top/.run/bench
logs=$top/.run/bench-logs
b=scripts/bench

echo "== build and install the extension"
make -s >/dev/null
make -s install >/dev/null

echo "== private cluster on port $port"
rm -rf "$logs"
mkdir -p "$logs"
cluster_env=$(scripts/pg-cluster.sh fresh "$dir" "$port") || exit 1
eval "$cluster_env"
trap 'scripts/pg-cluster.sh stop "$dir"' EXIT
export PGDATABASE=bench
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -d postgres -c "CREATE DATABASE bench"
q -c "CREATE EXTENSION pg_commerce" -c "CREATE EXTENSION pg_stat_statements"

echo "== fixtures"
q -f $b/setup.sql
# 50 products for orders (ids 1..50), then the hot ones
q -c "SELECT commerce.create_product('bench-item-' || g, 1000 + 100 * g, 1000000, 'bench') FROM generate_series(1, 50) g" >/dev/null
hot=$(q -c "SELECT commerce.create_product('bench-hot', 1000, 100, 'bench', 16)")
hot_order=$(q -c "SELECT commerce.create_product('bench-hot-order', 1000, 100, 'bench', 16)")
q -c "INSERT INTO bench.naive_stock VALUES (1, 100)"
ample=$(q -c "SELECT commerce.create_coupon('BENCH-AMPLE', 'fixed', 1000, 10000000)")
ample128=$(q -c "SELECT commerce.create_coupon('BENCH-AMPLE-128', 'fixed', 1000, 10000000, buckets => 128)")
q -c "INSERT INTO bench.naive_coupon (id, total) VALUES (1, 10000000), (2, 1000)"
flood=$(q -c "SELECT commerce.create_coupon('BENCH-FLOOD', 'fixed', 1000, 1000)")
# users 1..100000 hold the order coupon (written directly, see setup.sql)
order_coupon=$(q -c "SELECT commerce.create_coupon('BENCH-ORDER', 'fixed', 500, 100000)")
q -c "INSERT INTO commerce.issued_coupons (coupon_id, user_id) SELECT $order_coupon, g FROM generate_series(1, 100000) g" \
  -c "UPDATE commerce.coupon_buckets SET quantity = 0 WHERE coupon_id = $order_coupon"
q -c "VACUUM ANALYZE" -c "CHECKPOINT"

declare -A tps processed failed seconds
cases=()

# run_case NAME FIRST_USER PGBENCH_ARGS...: one pgbench run with wait sampling
run_case() {
	local name=$1 first=$2; shift 2
	[ -z "${BENCH_CASES:-}" ] || [[ " $BENCH_CASES " == *" $name "* ]] || return 0
	q -c "CHECKPOINT" -c "SELECT pg_stat_statements_reset()" -c "ALTER SEQUENCE bench.uid RESTART WITH $first" >/dev/null
	q -c "CALL bench.sample_waits('$name')" &
	local sampler=$!
	local t0 t1
	t0=$(date +%s.%N)
	pgbench -n -M prepared -j 2 "$@" >"$logs/$name.out" 2>&1 || { cat "$logs/$name.out"; echo "pgbench $name failed"; exit 1; }
	t1=$(date +%s.%N)
	wait $sampler
	tps[$name]=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$logs/$name.out" | tail -1)
	processed[$name]=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$logs/$name.out")
	failed[$name]=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$logs/$name.out")
	failed[$name]=${failed[$name]:-0}
	seconds[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	cases+=("$name")
	printf '   %-12s %10.0f tps  %7d txs  %4d failed  (%s s wall)\n' "$name" "${tps[$name]}" \
		"${processed[$name]}" "${failed[$name]}" "${seconds[$name]}"
	q -F ' | ' -c "SELECT round(total_exec_time)::text || ' ms', calls, round(mean_exec_time::numeric, 3) || ' ms',
	                      regexp_replace(left(query, 110), '\s+', ' ', 'g')
	               FROM pg_stat_statements WHERE query !~* 'pg_stat_statements|CHECKPOINT|ALTER SEQUENCE'
	               ORDER BY total_exec_time DESC LIMIT 8" >"$logs/$name.statements"
}

echo "== runs (${secs} s per timed case)"
run_case select1       1      -c 16 -T "$secs" -f $b/select1.sql
run_case insert1       1      -c 64 -T "$secs" -f $b/insert1.sql
run_case issue         1      -c 64 -T "$secs" -f $b/issue.sql -D coupon="$ample"
run_case naive-issue   1      -c 64 -T "$secs" -f $b/naive_issue.sql -D coupon=1
run_case issue-b128    1      -c 64 -T "$secs" -f $b/issue.sql -D coupon="$ample128"
run_case flood         100001 -c 50 -t 200 -f $b/flood_issue.sql -D coupon="$flood"
run_case naive-flood   100001 -c 50 -t 200 -f $b/flood_naive_issue.sql -D coupon=2
run_case reject        1      -c 50 -t 400 -f $b/flood_issue.sql -D coupon="$flood"
run_case naive-reject  1      -c 50 -t 400 -f $b/flood_naive_issue.sql -D coupon=2
run_case hot           1      -c 50 -t 100 -f $b/hot_take.sql -D product="$hot"
run_case naive-hot     1      -c 50 -t 100 -f $b/hot_naive_take.sql -D product=1
run_case hot-order     110001 -c 50 -t 100 -f $b/hot_order.sql -D product="$hot_order"
run_case order         1      -c 64 -T "$secs" -D products=50 -D coupon="$order_coupon" \
	-f $b/order1.sql -f $b/order2.sql -f $b/order3.sql
run_case order-writes  1      -c 64 -T "$secs" -f $b/order_writes.sql

ran() { for c in "$@"; do [ -n "${tps[$c]:-}" ] || return 1; done; }

echo "== outcomes"
check() { printf '   %-58s %s\n' "$1" "$([ "$2" = "$3" ] && echo "ok ($2)" || echo "WRONG: $2, expected $3")"; }
ran flood reject && check "flood + reject: issued coupons" "$(q -c "SELECT count(*) FROM commerce.issued_coupons WHERE coupon_id = $flood")" 1000
ran naive-flood naive-reject && check "naive-flood + naive-reject: issued coupons" "$(q -c "SELECT issued FROM bench.naive_coupon WHERE id = 2")" 1000
ran hot && check "hot: stock left" "$(q -c "SELECT sum(quantity) FROM commerce.stock_buckets WHERE product_id = $hot")" 0
ran naive-hot && check "naive-hot: stock left" "$(q -c "SELECT stock FROM bench.naive_stock WHERE id = 1")" 0
ran hot-order && check "hot-order: orders placed" "$(q -c "SELECT count(*) FROM commerce.order_items WHERE product_id = $hot_order")" 100

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
percent() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
verdict() { awk -v r="$1" -v bar="$2" 'BEGIN { print (r >= bar ? "meets" : "MISSES") }'; }

echo
echo "== results (2 cores shared; -M prepared; see $logs)"
printf '%-12s %8s %10s %8s %7s %9s  %s\n' case clients TPS txs failed "time(s)" "top wait events of the pgbench backends (share of samples)"
for name in "${cases[@]}"; do
	clients=$(sed -n 's/^number of clients: \([0-9]*\).*/\1/p' "$logs/$name.out")
	waits=$(q -c "SELECT string_agg(format('%s %s%%', wait, pct), ', ' ORDER BY pct DESC)
	              FROM (SELECT wait, round(100.0 * sum(backends) / sum(sum(backends)) OVER ())::int AS pct
	                    FROM bench.wait_samples WHERE run = '$name' GROUP BY wait
	                    ORDER BY 2 DESC LIMIT 4) w")
	printf '%-12s %8s %10.0f %8d %7d %9.2f  %s\n' "$name" "$clients" "${tps[$name]}" "${processed[$name]}" \
		"${failed[$name]}" "$(awk -v n="${processed[$name]}" -v t="${tps[$name]}" 'BEGIN { print n / t }')" "$waits"
done

echo
echo "== the issue's bars"
if ran issue naive-issue; then
	r=$(ratio "${tps[issue]}" "${tps[naive-issue]}")
	printf '   %-52s %6sx  bar >= 3x    %s\n' "issue_coupon / naive, 64 clients" "$r" "$(verdict "$r" 3)"
fi
if ran flood naive-flood; then
	r=$(ratio "${tps[flood]}" "${tps[naive-flood]}")
	printf '   %-52s %6sx  bar >= 1.5x  %s\n' "10,000-user flood: speed-up over naive, 50 clients" "$r" "$(verdict "$r" 1.5)"
fi
if ran order insert1; then
	r=$(ratio "${tps[order]}" "${tps[insert1]}")
	printf '   %-52s %6s%%  bar >= 40%%   %s\n' "place_order / one-row INSERT commit, 64 clients" \
		"$(percent "${tps[order]}" "${tps[insert1]}")" "$(verdict "$r" 0.4)"
fi
if ran order-writes insert1; then
	printf '   %-52s %6s%%  (no bar)\n' "an order's bare write set / one-row INSERT commit" \
		"$(percent "${tps[order-writes]}" "${tps[insert1]}")"
fi
if ran order order-writes; then
	printf '   %-52s %6s%%  (no bar)\n' "place_order / an order's bare write set" \
		"$(percent "${tps[order]}" "${tps[order-writes]}")"
fi
if ran issue-b128 naive-issue; then
	printf '   %-52s %6sx  (no bar)\n' "issue_coupon with 128 buckets / naive" "$(ratio "${tps[issue-b128]}" "${tps[naive-issue]}")"
fi
if ran reject naive-reject; then
	printf '   %-52s %6sx  (no bar)\n' "sold-out refusals: issue_coupon / naive" "$(ratio "${tps[reject]}" "${tps[naive-reject]}")"
fi
if ran hot naive-hot; then
	printf '   %-52s %6sx  (no bar)\n' "hot stock 5,000/100: decrement_stock / naive" "$(ratio "${tps[hot]}" "${tps[naive-hot]}")"
fi
