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
# runs only those cases, and prints only the bars they make up; a reject case
# brings its flood case along, whose sold-out coupon it refuses from),
# BENCH_INSTALL (default yes; no skips building and installing the extension
# and uses the one installed).  Logs (pgbench / calls output, top statements
# of pg_stat_statements, wait-event samples) go to .run/bench-logs/.
#
# Two forms of every call that can be refused (issue, flood, reject, hot,
# hot-order and their naive counterparts):
#   bare      the plain statement an application sends, e.g.
#             SELECT commerce.issue_coupon(nextval('bench.uid'), $coupon):
#             a refusal (PC410 coupon sold out, PC409 out of stock) comes
#             back to the client as an error.  pgbench stops a client at its
#             first error, so these cases run scripts/bench/calls.c (built
#             here into .run/bench-bin/calls), which counts each transaction
#             by outcome, takes the refusals named with -e as answers and
#             fails on any other error.  The ample issue cases cannot be
#             refused and run under pgbench.
#   wrapped   the same call inside a PL/pgSQL block with an exception handler
#             (bench.flood_issue and the others in scripts/bench/setup.sql),
#             which answers true / false; run under pgbench.  The handler's
#             subtransaction is part of the cost, for both designs alike.
# Each form has fixtures of its own (coupons, products, naive rows), so the
# outcomes of each case can be checked; each bar compares a case with the
# naive design in the same form.
#
# Cases (prepared statements throughout; users are distinct per transaction):
#   select1              SELECT 1, 16 clients                    machine limit
#   insert1              one-row INSERT commit, 64 clients       machine limit
#   issue[-wrapped]      issue_coupon, ample quantity, 64 clients
#                                                       vs naive-issue[-wrapped]
#   issue-b128           issue, bare, with 128 buckets instead of the default
#   flood[-wrapped]      10,000 users for 1,000 coupons, 50 clients (-t 200)
#                                                       vs naive-flood[-wrapped]
#   reject[-wrapped]     20,000 requests for that form's flood coupon, sold
#                        out by the flood, 50 clients: the refusal path alone
#                                                      vs naive-reject[-wrapped]
#   hot[-wrapped]        5,000 single units for stock 100 (16 buckets),
#                        50 clients, decrement_stock      vs naive-hot[-wrapped]
#   hot-order[-wrapped]  the same 5,000 / 100 through place_order with one
#                        item                             vs naive-hot[-wrapped]
#   order                place_order, 1-3 items with a coupon, 64 clients
#   order-writes         the rows a 2-item order writes (order, items, payment,
#                        ledger, outbox, wallet, stock, statistics) as one
#                        plain statement: no reads, locks, checks or coupon,
#                        64 clients.  What PostgreSQL needs for the write set
#                        alone; it writes directly into commerce's tables,
#                        after the order case.
# The naive-* cases call the single-row PL/pgSQL design of
# scripts/bench/setup.sql (bench.naive_issue, bench.naive_take) in the same
# two forms.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
port=${BENCH_PGPORT:-5465}
secs=${BENCH_SECONDS:-15}
install=${BENCH_INSTALL:-yes}
dir=$top/.run/bench
logs=$top/.run/bench-logs
bin=$top/.run/bench-bin
b=scripts/bench
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$pg_config" ] || pg_config=pg_config

all_cases="select1 insert1 issue issue-wrapped naive-issue naive-issue-wrapped issue-b128
	flood flood-wrapped naive-flood naive-flood-wrapped
	reject reject-wrapped naive-reject naive-reject-wrapped
	hot hot-wrapped naive-hot naive-hot-wrapped hot-order hot-order-wrapped
	order order-writes"
for c in ${BENCH_CASES:-}; do
	[[ " $(echo $all_cases) " == *" $c "* ]] || { echo "bench-sql: no case $c (cases: $(echo $all_cases))" >&2; exit 2; }
done

case $install in
yes)
	echo "== build and install the extension"
	make -s >/dev/null
	make -s install >/dev/null
	;;
no) echo "== the extension as installed (BENCH_INSTALL=no)" ;;
*) echo "bench-sql: BENCH_INSTALL is yes or no, not '$install'" >&2; exit 2 ;;
esac

echo "== build the load driver ($b/calls.c)"
mkdir -p "$bin"
cc -O2 -Wall -Wextra -I"$("$pg_config" --includedir)" -o "$bin/calls" $b/calls.c \
	-L"$("$pg_config" --libdir)" -lpq -lpthread

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
# 50 products for orders (ids 1..50), then the hot ones: one per case, so
# that each case's stock and order items can be counted
q -c "SELECT commerce.create_product('bench-item-' || g, 1000 + 100 * g, 1000000, 'bench') FROM generate_series(1, 50) g" >/dev/null
hot=$(q -c "SELECT commerce.create_product('bench-hot', 1000, 100, 'bench', 16)")
hot_wrapped=$(q -c "SELECT commerce.create_product('bench-hot-wrapped', 1000, 100, 'bench', 16)")
hot_order=$(q -c "SELECT commerce.create_product('bench-hot-order', 1000, 100, 'bench', 16)")
hot_order_wrapped=$(q -c "SELECT commerce.create_product('bench-hot-order-wrapped', 1000, 100, 'bench', 16)")
# the naive rows: stock 1 bare, 2 wrapped; coupons 1 / 3 ample and 2 / 4
# flood, bare / wrapped
q -c "INSERT INTO bench.naive_stock VALUES (1, 100), (2, 100)"
q -c "INSERT INTO bench.naive_coupon (id, total) VALUES (1, 10000000), (2, 1000), (3, 10000000), (4, 1000)"
ample=$(q -c "SELECT commerce.create_coupon('BENCH-AMPLE', 'fixed', 1000, 10000000)")
ample_wrapped=$(q -c "SELECT commerce.create_coupon('BENCH-AMPLE-WRAPPED', 'fixed', 1000, 10000000)")
ample128=$(q -c "SELECT commerce.create_coupon('BENCH-AMPLE-128', 'fixed', 1000, 10000000, buckets => 128)")
flood=$(q -c "SELECT commerce.create_coupon('BENCH-FLOOD', 'fixed', 1000, 1000)")
flood_wrapped=$(q -c "SELECT commerce.create_coupon('BENCH-FLOOD-WRAPPED', 'fixed', 1000, 1000)")
# users 1..100000 hold the order coupon (written directly, see setup.sql)
order_coupon=$(q -c "SELECT commerce.create_coupon('BENCH-ORDER', 'fixed', 500, 100000)")
q -c "INSERT INTO commerce.issued_coupons (coupon_id, user_id) SELECT $order_coupon, g FROM generate_series(1, 100000) g" \
  -c "UPDATE commerce.coupon_buckets SET quantity = 0 WHERE coupon_id = $order_coupon"
q -c "VACUUM ANALYZE" -c "CHECKPOINT"

declare -A tps processed failed seconds outcomes tool
cases=()

# selected NAME: whether BENCH_CASES asks for the case (a reject case refuses
# from the coupon its flood case sold out, so it brings that case along)
selected() {
	[ -z "${BENCH_CASES:-}" ] && return 0
	[[ " $BENCH_CASES " == *" $1 "* ]] && return 0
	[[ $1 == *flood* && " $BENCH_CASES " == *" ${1/flood/reject} "* ]]
}

# measure NAME FIRST_USER COMMAND...: one run of pgbench or calls (both
# print pgbench's summary lines) with wait sampling and the top statements
measure() {
	local name=$1 first=$2; shift 2
	q -c "CHECKPOINT" -c "SELECT pg_stat_statements_reset()" -c "ALTER SEQUENCE bench.uid RESTART WITH $first" >/dev/null
	q -c "CALL bench.sample_waits('$name')" &
	local sampler=$!
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >"$logs/$name.out" 2>&1 || { cat "$logs/$name.out"; echo "${1##*/} $name failed"; exit 1; }
	t1=$(date +%s.%N)
	wait $sampler
	tps[$name]=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$logs/$name.out" | tail -1)
	processed[$name]=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$logs/$name.out")
	failed[$name]=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$logs/$name.out")
	failed[$name]=${failed[$name]:-0}
	outcomes[$name]=$(sed -n 's/^outcomes: //p' "$logs/$name.out")
	tool[$name]=${1##*/}
	seconds[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	cases+=("$name")
	printf '   %-20s %10.0f tps  %7d txs  %4d failed  (%s s wall)  %s\n' "$name" "${tps[$name]}" \
		"${processed[$name]}" "${failed[$name]}" "${seconds[$name]}" "${outcomes[$name]}"
	q -F ' | ' -c "SELECT round(total_exec_time)::text || ' ms', calls, round(mean_exec_time::numeric, 3) || ' ms',
	                      regexp_replace(left(query, 110), '\s+', ' ', 'g')
	               FROM pg_stat_statements WHERE query !~* 'pg_stat_statements|CHECKPOINT|ALTER SEQUENCE'
	               ORDER BY total_exec_time DESC LIMIT 8" >"$logs/$name.statements"
}

# run_case NAME FIRST_USER PGBENCH_ARGS...: a pgbench run
run_case() {
	local name=$1 first=$2; shift 2
	selected "$name" || return 0
	measure "$name" "$first" pgbench -n -M prepared -j 2 "$@"
}

# run_calls NAME FIRST_USER REFUSALS SQL CALLS_ARGS...: a run of the load
# driver, for bare calls whose refusals (SQLSTATEs REFUSALS, e.g. PC410) are
# errors; any other error fails the run
run_calls() {
	local name=$1 first=$2 refusals=$3 sql=$4; shift 4
	selected "$name" || return 0
	[ -n "$sql" ] || { echo "bench-sql: no statement for $name" >&2; exit 1; }
	measure "$name" "$first" "$bin/calls" -j 2 -e "$refusals" "$@" "$sql"
}

# statement FILE VAR=VALUE...: the one statement of a pgbench script with
# its :VARs substituted, for the load driver
statement() {
	local s kv
	s=$(<"$1"); shift
	for kv in "$@"; do s=${s//:${kv%%=*}/${kv#*=}}; done
	[[ ! $s =~ (^|[^:]):[a-z_] ]] || { echo "bench-sql: a variable is left in: $s" >&2; exit 1; }
	echo "${s%;}"
}

echo "== runs (${secs} s per timed case)"
run_case  select1              1      -c 16 -T "$secs" -f $b/select1.sql
run_case  insert1              1      -c 64 -T "$secs" -f $b/insert1.sql
run_case  issue                1      -c 64 -T "$secs" -f $b/issue.sql -D coupon="$ample"
run_case  issue-wrapped        1      -c 64 -T "$secs" -f $b/wrapped_issue.sql -D coupon="$ample_wrapped"
run_case  naive-issue          1      -c 64 -T "$secs" -f $b/naive_issue.sql -D coupon=1
run_case  naive-issue-wrapped  1      -c 64 -T "$secs" -f $b/wrapped_naive_issue.sql -D coupon=3
run_case  issue-b128           1      -c 64 -T "$secs" -f $b/issue.sql -D coupon="$ample128"
run_calls flood                100001 PC410 "$(statement $b/issue.sql coupon="$flood")" -c 50 -t 200
run_case  flood-wrapped        100001 -c 50 -t 200 -f $b/wrapped_issue.sql -D coupon="$flood_wrapped"
run_calls naive-flood          100001 PC410 "$(statement $b/naive_issue.sql coupon=2)" -c 50 -t 200
run_case  naive-flood-wrapped  100001 -c 50 -t 200 -f $b/wrapped_naive_issue.sql -D coupon=4
run_calls reject               1      PC410 "$(statement $b/issue.sql coupon="$flood")" -c 50 -t 400
run_case  reject-wrapped       1      -c 50 -t 400 -f $b/wrapped_issue.sql -D coupon="$flood_wrapped"
run_calls naive-reject         1      PC410 "$(statement $b/naive_issue.sql coupon=2)" -c 50 -t 400
run_case  naive-reject-wrapped 1      -c 50 -t 400 -f $b/wrapped_naive_issue.sql -D coupon=4
run_calls hot                  1      PC409 "$(statement $b/take.sql product="$hot")" -c 50 -t 100
run_case  hot-wrapped          1      -c 50 -t 100 -f $b/wrapped_take.sql -D product="$hot_wrapped"
run_calls naive-hot            1      PC409 "$(statement $b/naive_take.sql product=1)" -c 50 -t 100
run_case  naive-hot-wrapped    1      -c 50 -t 100 -f $b/wrapped_naive_take.sql -D product=2
run_calls hot-order            110001 PC409 "$(statement $b/order_one.sql product="$hot_order")" -c 50 -t 100
run_case  hot-order-wrapped    115001 -c 50 -t 100 -f $b/wrapped_order.sql -D product="$hot_order_wrapped"
run_case  order                1      -c 64 -T "$secs" -D products=50 -D coupon="$order_coupon" \
	-f $b/order1.sql -f $b/order2.sql -f $b/order3.sql
run_case  order-writes         1      -c 64 -T "$secs" -f $b/order_writes.sql

ran() { for c in "$@"; do [ -n "${tps[$c]:-}" ] || return 1; done; }

echo "== outcomes"
check() { printf '   %-62s %s\n' "$1" "$([ "$2" = "$3" ] && echo "ok ($2)" || echo "WRONG: $2, expected $3")"; }
# answers NAME EXPECTED: a bare case's outcomes as counted by the driver, a
# wrapped one's answered transactions (pgbench stops at any error)
answers() {
	ran "$1" || return 0
	if [ "${tool[$1]}" = calls ]; then
		check "$1: outcomes" "${outcomes[$1]}" "$2"
	else
		check "$1: answered (true or false), failed" "${processed[$1]}, ${failed[$1]}" "$2, 0"
	fi
}
issued() { q -c "SELECT count(*) FROM commerce.issued_coupons WHERE coupon_id = $1"; }
naive_issued() { q -c "SELECT issued || ' counted, ' || (SELECT count(*) FROM bench.naive_issued i WHERE i.coupon_id = c.id) || ' rows' FROM bench.naive_coupon c WHERE id = $1"; }
stock_left() { q -c "SELECT sum(quantity) FROM commerce.stock_buckets WHERE product_id = $1"; }
naive_stock_left() { q -c "SELECT stock FROM bench.naive_stock WHERE id = $1"; }
items() { q -c "SELECT count(*) FROM commerce.order_items WHERE product_id = $1"; }

ran flood && check "flood (+ reject): issued coupons" "$(issued "$flood")" 1000
answers flood "success=1000 PC410=9000"
answers reject "success=0 PC410=20000"
ran flood-wrapped && check "flood-wrapped (+ reject-wrapped): issued coupons" "$(issued "$flood_wrapped")" 1000
answers flood-wrapped 10000
answers reject-wrapped 20000
ran naive-flood && check "naive-flood (+ naive-reject): issued coupons" "$(naive_issued 2)" "1000 counted, 1000 rows"
answers naive-flood "success=1000 PC410=9000"
answers naive-reject "success=0 PC410=20000"
ran naive-flood-wrapped && check "naive-flood-wrapped (+ naive-reject-wrapped): issued coupons" "$(naive_issued 4)" "1000 counted, 1000 rows"
answers naive-flood-wrapped 10000
answers naive-reject-wrapped 20000
ran hot && check "hot: stock left" "$(stock_left "$hot")" 0
answers hot "success=100 PC409=4900"
ran hot-wrapped && check "hot-wrapped: stock left" "$(stock_left "$hot_wrapped")" 0
answers hot-wrapped 5000
ran naive-hot && check "naive-hot: stock left" "$(naive_stock_left 1)" 0
answers naive-hot "success=100 PC409=4900"
ran naive-hot-wrapped && check "naive-hot-wrapped: stock left" "$(naive_stock_left 2)" 0
answers naive-hot-wrapped 5000
ran hot-order && check "hot-order: stock left, order items" "$(stock_left "$hot_order"), $(items "$hot_order")" "0, 100"
answers hot-order "success=100 PC409=4900"
ran hot-order-wrapped && check "hot-order-wrapped: stock left, order items" \
	"$(stock_left "$hot_order_wrapped"), $(items "$hot_order_wrapped")" "0, 100"
answers hot-order-wrapped 5000

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
percent() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
verdict() { awk -v r="$1" -v bar="$2" 'BEGIN { print (r >= bar ? "meets" : "MISSES") }'; }

echo
echo "== results (2 cores shared; prepared statements; bare refusal cases by $b/calls.c; see $logs)"
printf '%-20s %8s %10s %8s %7s %9s  %s\n' case clients TPS txs failed "time(s)" "top wait events of the client backends (share of samples)"
for name in "${cases[@]}"; do
	clients=$(sed -n 's/^number of clients: \([0-9]*\).*/\1/p' "$logs/$name.out")
	waits=$(q -c "SELECT string_agg(format('%s %s%%', wait, pct), ', ' ORDER BY pct DESC)
	              FROM (SELECT wait, round(100.0 * sum(backends) / sum(sum(backends)) OVER ())::int AS pct
	                    FROM bench.wait_samples WHERE run = '$name' GROUP BY wait
	                    ORDER BY 2 DESC LIMIT 4) w")
	printf '%-20s %8s %10.0f %8d %7d %9.2f  %s\n' "$name" "$clients" "${tps[$name]}" "${processed[$name]}" \
		"${failed[$name]}" "$(awk -v n="${processed[$name]}" -v t="${tps[$name]}" 'BEGIN { print n / t }')" "$waits"
done

echo
echo "== the issue's bars (bare: plain statements, refusals as errors; wrapped: in a PL/pgSQL exception block)"
# bar LABEL FORM CASE BASE MIN: CASE's tps over BASE's, against MIN (x)
bar() {
	ran "$3" "$4" || return 0
	local r
	r=$(ratio "${tps[$3]}" "${tps[$4]}")
	printf '   %-56s %-7s %6sx  bar >= %-5s %s\n' "$1" "$2" "$r" "$5x" "$(verdict "$r" "$5")"
}
for form in bare wrapped; do
	w=; [ $form = bare ] || w=-wrapped
	bar "issue_coupon / naive, ample quantity, 64 clients" $form issue$w naive-issue$w 3
done
for form in bare wrapped; do
	w=; [ $form = bare ] || w=-wrapped
	bar "10,000-user flood: speed-up over naive, 50 clients" $form flood$w naive-flood$w 2
done
for form in bare wrapped; do
	w=; [ $form = bare ] || w=-wrapped
	bar "sold-out refusals: issue_coupon / naive, 50 clients" $form reject$w naive-reject$w 1.5
done
for form in bare wrapped; do
	w=; [ $form = bare ] || w=-wrapped
	bar "hot stock 5,000/100: decrement_stock / naive" $form hot$w naive-hot$w 1.2
done
for form in bare wrapped; do
	w=; [ $form = bare ] || w=-wrapped
	bar "hot stock 5,000/100: place_order / naive take" $form hot-order$w naive-hot$w 1.2
done
if ran order insert1; then
	r=$(ratio "${tps[order]}" "${tps[insert1]}")
	printf '   %-64s %6s%%  bar >= 40%%   %s\n' "place_order / one-row INSERT commit, 64 clients" \
		"$(percent "${tps[order]}" "${tps[insert1]}")" "$(verdict "$r" 0.4)"
fi
if ran order-writes insert1; then
	printf '   %-64s %6s%%  (no bar)\n' "an order's bare write set / one-row INSERT commit" \
		"$(percent "${tps[order-writes]}" "${tps[insert1]}")"
fi
if ran order order-writes; then
	r=$(ratio "${tps[order]}" "${tps[order-writes]}")
	printf '   %-64s %6s%%  bar >= 90%%   %s\n' "place_order / an order's bare write set, 64 clients" \
		"$(percent "${tps[order]}" "${tps[order-writes]}")" "$(verdict "$r" 0.9)"
fi
if ran issue-b128 naive-issue; then
	printf '   %-64s %6sx  (no bar)\n' "issue_coupon with 128 buckets / naive, bare" "$(ratio "${tps[issue-b128]}" "${tps[naive-issue]}")"
fi
