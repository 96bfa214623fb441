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
# BENCH_REPEAT (default 5: runs of each short case, which reports their
# median), BENCH_INSTALL (default yes; no skips building and installing the extension
# and uses the one installed).  Logs (pgbench / calls output, top statements
# of pg_stat_statements, wait-event samples) go to .run/bench-logs/.
#
# Two forms of every call that can be refused (issue, flood, reject, hot,
# hot-order and their naive counterparts):
#   bare      the plain statement an application sends, e.g.
#             SELECT commerce.issue_coupon(nextval('bench.uid'), $coupon):
#             a refusal (PC410 coupon sold out, PC409 out of stock) comes
#             back to the client as an error.
#   wrapped   the same call inside a PL/pgSQL block with an exception handler
#             (bench.flood_issue and the others in scripts/bench/setup.sql),
#             which answers true / false.  The handler's subtransaction is
#             part of the cost, for both designs alike.
# pgbench stops a client at its first error, so the flood, reject and hot
# cases (both forms, so both are measured alike) run scripts/bench/calls.c
# (built here into .run/bench-bin/calls), which counts each transaction by
# outcome, takes the refusals named with -e as answers, fails on any other
# error, and warms every connection up before the clock starts (see warm_*
# below).  The ample issue cases cannot be refused, last 15 s and run under
# pgbench.  Each form has fixtures of its own (coupons, products, naive
# rows), so the outcomes of each case can be checked; each bar compares a
# case with the naive design in the same form.
#
# Cases (prepared statements throughout; users are distinct per transaction):
#   select1              SELECT 1, 16 clients                    machine limit
#   insert1              one-row INSERT commit, 64 clients       machine limit
#   issue[-wrapped]      issue_coupon, ample quantity, 64 clients
#                                                       vs naive-issue[-wrapped]
#   issue-b128           issue, bare, with 128 buckets instead of the default
#   flood[-wrapped]      10,000 users for 1,000 coupons, 50 clients (-t 200),
#                        each run on a coupon of its own
#                                                       vs naive-flood[-wrapped]
#   reject[-wrapped]     refusals on the coupon the last flood run sold out,
#                        50 clients, BENCH_SECONDS in all: the refusal path
#                        alone                         vs naive-reject[-wrapped]
#   floor[-wrapped]      the cheapest refusal there can be: SELECT 1 / 0
#                        (22012), bare or caught in a PL/pgSQL block, with
#                        the same nextval, 50 clients: no design refuses
#                        faster than this here
#   hot[-wrapped]        5,000 single units for stock 100 (16 buckets),
#                        50 clients, decrement_stock, each run on a product
#                        of its own                       vs naive-hot[-wrapped]
#   hot-order[-wrapped]  the same 5,000 / 100 through place_order with one
#                        item                             vs naive-hot[-wrapped]
# These short cases (a second or less each) run BENCH_REPEAT times in
# rounds, a design's run beside its naive counterpart's, and report the
# median run; every connection is warmed up before the clock starts.
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
repeat=${BENCH_REPEAT:-5}
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
# 50 products for orders (ids 1..50); the flood coupons, hot products and
# their naive rows are made per run (new_coupon and the others below), so
# that each run's issued coupons, stock and order items can be counted
q -c "SELECT commerce.create_product('bench-item-' || g, 1000 + 100 * g, 1000000, 'bench') FROM generate_series(1, 50) g" >/dev/null
# the naive ample coupons, bare (1) and wrapped (3)
q -c "INSERT INTO bench.naive_coupon (id, total) VALUES (1, 10000000), (3, 10000000)"
ample=$(q -c "SELECT commerce.create_coupon('BENCH-AMPLE', 'fixed', 1000, 10000000)")
ample_wrapped=$(q -c "SELECT commerce.create_coupon('BENCH-AMPLE-WRAPPED', 'fixed', 1000, 10000000)")
ample128=$(q -c "SELECT commerce.create_coupon('BENCH-AMPLE-128', 'fixed', 1000, 10000000, buckets => 128)")
# users 1..100000 hold the order coupon (written directly, see setup.sql)
order_coupon=$(q -c "SELECT commerce.create_coupon('BENCH-ORDER', 'fixed', 500, 100000)")
q -c "INSERT INTO commerce.issued_coupons (coupon_id, user_id) SELECT $order_coupon, g FROM generate_series(1, 100000) g" \
  -c "UPDATE commerce.coupon_buckets SET quantity = 0 WHERE coupon_id = $order_coupon"
# warm-up fixtures (see warm_* below): ample and sold-out ones for both
# designs, users 180001..200000 from their own sequence
warm_coupon=$(q -c "SELECT commerce.create_coupon('BENCH-WARM', 'fixed', 1000, 10000000)")
warm_sold_coupon=$(q -c "SELECT commerce.create_coupon('BENCH-WARM-SOLD', 'fixed', 1000, 0)")
warm_product=$(q -c "SELECT commerce.create_product('bench-warm', 1000, 1000000, 'bench', 16)")
warm_sold_product=$(q -c "SELECT commerce.create_product('bench-warm-sold', 1000, 0, 'bench', 16)")
q -c "INSERT INTO bench.naive_stock VALUES (3, 1000000), (4, 0)" \
  -c "INSERT INTO bench.naive_coupon (id, total) VALUES (5, 10000000), (6, 0)" \
  -c "CREATE SEQUENCE bench.warm_uid MINVALUE 180001 MAXVALUE 200000 CYCLE"
q -c "VACUUM ANALYZE" -c "CHECKPOINT"

declare -A tps processed failed seconds outcomes tool
cases=()

# selected NAME: whether BENCH_CASES asks for the case (a reject case refuses
# from the coupon its flood case sold out, so it brings that case along)
selected() {
	[ -z "${BENCH_CASES:-}" ] && return 0
	[[ $1 == floor* && " $BENCH_CASES " == *" reject"* ]] && return 0	# reject brings its floor
	[[ $1 == *.* ]] && return 0		# one run of a repeated case, selected as a whole
	[[ " $BENCH_CASES " == *" $1 "* ]] && return 0
	[[ $1 == *flood* && " $BENCH_CASES " == *" ${1/flood/reject} "* ]]
}

# measure NAME FIRST_USER COMMAND...: one run of pgbench or calls (both
# print pgbench's summary lines) with wait sampling and the top statements,
# after a CHECKPOINT (unless the caller has just made one: checkpointed=yes)
checkpointed=no
measure() {
	local name=$1 first=$2; shift 2
	[ "$checkpointed" = yes ] || q -c "CHECKPOINT" >/dev/null
	q -c "SELECT pg_stat_statements_reset()" -c "ALTER SEQUENCE bench.uid RESTART WITH $first" >/dev/null
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
# driver; REFUSALS (SQLSTATEs, e.g. PC410) are the answers a bare call
# gives as errors, "-" for a wrapped call, which answers without one; any
# other error fails the run
run_calls() {
	local name=$1 first=$2 refusals=$3 sql=$4; shift 4
	selected "$name" || return 0
	[ -n "$sql" ] || { echo "bench-sql: no statement for $name" >&2; exit 1; }
	[ "$refusals" = - ] || set -- -e "$refusals" "$@"
	measure "$name" "$first" "$bin/calls" -j 2 "$@" "$sql"
}

# Warm-up (calls -w): before the clock starts, every connection of a flood,
# reject or hot case calls what the case calls, once successfully and once
# refused, on fixtures of its own.  A shop's pooled connections have run the
# API before a sale opens; a backend's first calls (planning the kept
# statements, compiling PL/pgSQL, loading caches) cost about as much as the
# 100-400 calls each client makes in these short cases, for both designs.
warm_issue=(-w "SELECT commerce.issue_coupon(nextval('bench.warm_uid'), $warm_coupon)"
	-w "SELECT commerce.issue_coupon(nextval('bench.warm_uid'), $warm_sold_coupon)")
warm_issue_wrapped=(-w "SELECT bench.flood_issue(nextval('bench.warm_uid'), $warm_coupon)"
	-w "SELECT bench.flood_issue(nextval('bench.warm_uid'), $warm_sold_coupon)")
warm_naive_issue=(-w "SELECT bench.naive_issue(nextval('bench.warm_uid'), 5)"
	-w "SELECT bench.naive_issue(nextval('bench.warm_uid'), 6)")
warm_naive_issue_wrapped=(-w "SELECT bench.flood_naive_issue(nextval('bench.warm_uid'), 5)"
	-w "SELECT bench.flood_naive_issue(nextval('bench.warm_uid'), 6)")
warm_take=(-w "SELECT commerce.decrement_stock($warm_product, 1)" -w "SELECT commerce.decrement_stock($warm_sold_product, 1)")
warm_take_wrapped=(-w "SELECT bench.flood_take($warm_product)" -w "SELECT bench.flood_take($warm_sold_product)")
warm_naive_take=(-w "SELECT bench.naive_take(3)" -w "SELECT bench.naive_take(4)")
warm_naive_take_wrapped=(-w "SELECT bench.flood_naive_take(3)" -w "SELECT bench.flood_naive_take(4)")
warm_order=(-w "SELECT commerce.place_order(nextval('bench.warm_uid'), jsonb_build_array(jsonb_build_object('product_id', $warm_product, 'quantity', 1)))"
	-w "SELECT commerce.place_order(nextval('bench.warm_uid'), jsonb_build_array(jsonb_build_object('product_id', $warm_sold_product, 'quantity', 1)))")
warm_order_wrapped=(-w "SELECT bench.flood_order(nextval('bench.warm_uid'), $warm_product)"
	-w "SELECT bench.flood_order(nextval('bench.warm_uid'), $warm_sold_product)")

# statement FILE VAR=VALUE...: the one statement of a pgbench script with
# its :VARs substituted, for the load driver
statement() {
	local s kv
	s=$(<"$1"); shift
	for kv in "$@"; do s=${s//:${kv%%=*}/${kv#*=}}; done
	[[ ! $s =~ (^|[^:]):[a-z_] ]] || { echo "bench-sql: a variable is left in: $s" >&2; exit 1; }
	echo "${s%;}"
}

# Fixtures of the repeated cases, one per run: each prints its id.
new_coupon() { q -c "SELECT commerce.create_coupon('BENCH-FLOOD-' || (SELECT count(*) + 1 FROM commerce.coupons), 'fixed', 1000, 1000)"; }
new_naive_coupon() { q -c "INSERT INTO bench.naive_coupon (id, total) SELECT coalesce(max(id), 0) + 1, 1000 FROM bench.naive_coupon RETURNING id"; }
new_product() { q -c "SELECT commerce.create_product('bench-hot', 1000, 100, 'bench', 16)"; }
new_naive_stock() { q -c "INSERT INTO bench.naive_stock SELECT coalesce(max(id), 0) + 1, 100 FROM bench.naive_stock RETURNING id"; }

# What each repeated run must have left (printed among the outcomes).
check() { printf '   %-62s %s\n' "$1" "$([ "$2" = "$3" ] && echo "ok ($2)" || echo "WRONG: $2, expected $3")"; }
issued() { q -c "SELECT count(*) FROM commerce.issued_coupons WHERE coupon_id = $1"; }
naive_issued() { q -c "SELECT issued || ' counted, ' || (SELECT count(*) FROM bench.naive_issued i WHERE i.coupon_id = c.id) || ' rows' FROM bench.naive_coupon c WHERE id = $1"; }
stock_left() { q -c "SELECT sum(quantity) FROM commerce.stock_buckets WHERE product_id = $1"; }
naive_stock_left() { q -c "SELECT stock FROM bench.naive_stock WHERE id = $1"; }
items() { q -c "SELECT count(*) FROM commerce.order_items WHERE product_id = $1"; }
left_by_flood() { echo "$(issued "$1")"; }
left_by_naive_flood() { echo "$(naive_issued "$1")"; }
left_by_hot() { echo "$(stock_left "$1")"; }
left_by_naive_hot() { echo "$(naive_stock_left "$1")"; }
left_by_hot_order() { echo "$(stock_left "$1"), $(items "$1")"; }

declare -A spread last_fixture runs_of
checks=()

# one_run NAME R FIXTURE LEFT EXPECT_LEFT EXPECT_OUTCOMES REFUSALS SCRIPT VAR
#         FIRST_USER CALLS_ARGS...
# Run R of a case made of several short runs: FIXTURE makes what it works
# on (and prints its id), LEFT prints what the run left of it, to compare
# with EXPECT_LEFT ("-": no check); EXPECT_OUTCOMES is the driver's outcome
# line, "refused:SQLSTATE" for a timed run that must refuse every call, or
# "answered" for a timed wrapped one, whose every call must answer.
one_run() {
	local name=$1 r=$2 fixture=$3 left=$4 expect_left=$5 expect=$6 refusals=$7 script=$8 var=$9
	local first=${10}
	shift 10
	selected "$name" || return 0
	# the checkpoint before the fixture, not between it and the run: a run
	# of a second must not pay the first write after a checkpoint (a
	# full-page image) of every page its fixture is on, which the design
	# with more bucket pages would pay more of
	q -c "CHECKPOINT" >/dev/null
	local id
	id=$($fixture)
	checkpointed=yes
	run_calls "$name.$r" "$first" "$refusals" "$(statement "$script" "$var=$id")" "$@"
	checkpointed=no
	runs_of[$name]="${runs_of[$name]:-} ${tps[$name.$r]}"
	last_fixture[$name]=$id
	[ "$expect_left" = - ] || checks+=("$(check "$name run $r: what is left" "$($left "$id")" "$expect_left")")
	case $expect in
	refused:*) expect="success=0 ${expect#refused:}=${processed[$name.$r]}" ;;
	answered) expect="success=${processed[$name.$r]}" ;;
	esac
	checks+=("$(check "$name run $r: outcomes" "${outcomes[$name.$r]}" "$expect")")
}

# aggregate NAME...: each case's figure is the median of its runs;
# spread[NAME] lists them all
aggregate() {
	local name r
	for name in "$@"; do
		[ -n "${runs_of[$name]:-}" ] || continue
		tps[$name]=$(printf '%s\n' ${runs_of[$name]} | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
		spread[$name]=$(printf '%s\n' ${runs_of[$name]} | sort -g | awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 }')
		processed[$name]=0
		failed[$name]=0
		for r in $(seq 1 "$repeat"); do
			processed[$name]=$((processed[$name] + ${processed[$name.$r]:-0}))
			failed[$name]=$((failed[$name] + ${failed[$name.$r]:-0}))
		done
		tool[$name]=calls
		cp "$logs/$name.1.out" "$logs/$name.out"
		cases+=("$name")
	done
}

echo "== runs (${secs} s per timed case; the short cases as $repeat runs, a design's run beside its naive one's)"
run_case  select1              1      -c 16 -T "$secs" -f $b/select1.sql
run_case  insert1              1      -c 64 -T "$secs" -f $b/insert1.sql
run_case  issue                1      -c 64 -T "$secs" -f $b/issue.sql -D coupon="$ample"
run_case  issue-wrapped        1      -c 64 -T "$secs" -f $b/wrapped_issue.sql -D coupon="$ample_wrapped"
run_case  naive-issue          1      -c 64 -T "$secs" -f $b/naive_issue.sql -D coupon=1
run_case  naive-issue-wrapped  1      -c 64 -T "$secs" -f $b/wrapped_naive_issue.sql -D coupon=3
run_case  issue-b128           1      -c 64 -T "$secs" -f $b/issue.sql -D coupon="$ample128"

# The short cases run in rounds: round r runs the r-th run of every case
# of its group, so a design and the naive one meet the shared machine in
# the same minute.
# 10,000 users for 1,000 coupons (users 100001..110000, each run a coupon of its own)
for r in $(seq 1 "$repeat"); do
	one_run flood $r new_coupon left_by_flood 1000 "success=1000 PC410=9000" \
		PC410 $b/issue.sql coupon 100001 -c 50 -t 200 "${warm_issue[@]}"
	one_run naive-flood $r new_naive_coupon left_by_naive_flood "1000 counted, 1000 rows" "success=1000 PC410=9000" \
		PC410 $b/naive_issue.sql coupon 100001 -c 50 -t 200 "${warm_naive_issue[@]}"
	one_run flood-wrapped $r new_coupon left_by_flood 1000 "success=10000" \
		- $b/wrapped_issue.sql coupon 100001 -c 50 -t 200 "${warm_issue_wrapped[@]}"
	one_run naive-flood-wrapped $r new_naive_coupon left_by_naive_flood "1000 counted, 1000 rows" "success=10000" \
		- $b/wrapped_naive_issue.sql coupon 100001 -c 50 -t 200 "${warm_naive_issue_wrapped[@]}"
done
aggregate flood naive-flood flood-wrapped naive-flood-wrapped

# refusals on the coupon the last flood run sold out, by users 1..100000
# (none of whom holds it), beside the floor; BENCH_SECONDS in all, in
# $repeat slices
slice=$(( (secs + repeat - 1) / repeat ))
reject_user="1 + nextval('bench.uid') % 100000"
flood_coupon() { echo "${last_fixture[flood]:-0}"; }
flood_coupon_wrapped() { echo "${last_fixture[flood-wrapped]:-0}"; }
naive_flood_coupon() { echo "${last_fixture[naive-flood]:-0}"; }
naive_flood_coupon_wrapped() { echo "${last_fixture[naive-flood-wrapped]:-0}"; }
no_fixture() { echo 0; }
reject_script() { sed "s/nextval('bench.uid')/$reject_user/" "$1" >"$logs/reject-$(basename "$1")"; echo "$logs/reject-$(basename "$1")"; }
for r in $(seq 1 "$repeat"); do
	one_run floor $r no_fixture - - refused:22012 22012 $b/floor.sql none 1 -c 50 -T "$slice"
	one_run reject $r flood_coupon issued 1000 refused:PC410 \
		PC410 "$(reject_script $b/issue.sql)" coupon 1 -c 50 -T "$slice" "${warm_issue[@]}"
	one_run naive-reject $r naive_flood_coupon naive_issued "1000 counted, 1000 rows" refused:PC410 \
		PC410 "$(reject_script $b/naive_issue.sql)" coupon 1 -c 50 -T "$slice" "${warm_naive_issue[@]}"
	one_run floor-wrapped $r no_fixture - - answered - $b/wrapped_floor.sql none 1 -c 50 -T "$slice"
	one_run reject-wrapped $r flood_coupon_wrapped issued 1000 answered \
		- "$(reject_script $b/wrapped_issue.sql)" coupon 1 -c 50 -T "$slice" "${warm_issue_wrapped[@]}"
	one_run naive-reject-wrapped $r naive_flood_coupon_wrapped naive_issued "1000 counted, 1000 rows" answered \
		- "$(reject_script $b/wrapped_naive_issue.sql)" coupon 1 -c 50 -T "$slice" "${warm_naive_issue_wrapped[@]}"
done
aggregate floor reject naive-reject floor-wrapped reject-wrapped naive-reject-wrapped

# 5,000 single units for stock 100 in 16 buckets, a product of its own per run
for r in $(seq 1 "$repeat"); do
	one_run hot $r new_product left_by_hot 0 "success=100 PC409=4900" \
		PC409 $b/take.sql product 1 -c 50 -t 100 "${warm_take[@]}"
	one_run naive-hot $r new_naive_stock left_by_naive_hot 0 "success=100 PC409=4900" \
		PC409 $b/naive_take.sql product 1 -c 50 -t 100 "${warm_naive_take[@]}"
	one_run hot-order $r new_product left_by_hot_order "0, 100" "success=100 PC409=4900" \
		PC409 $b/order_one.sql product 110001 -c 50 -t 100 "${warm_order[@]}"
	one_run hot-wrapped $r new_product left_by_hot 0 "success=5000" \
		- $b/wrapped_take.sql product 1 -c 50 -t 100 "${warm_take_wrapped[@]}"
	one_run naive-hot-wrapped $r new_naive_stock left_by_naive_hot 0 "success=5000" \
		- $b/wrapped_naive_take.sql product 1 -c 50 -t 100 "${warm_naive_take_wrapped[@]}"
	one_run hot-order-wrapped $r new_product left_by_hot_order "0, 100" "success=5000" \
		- $b/wrapped_order.sql product 115001 -c 50 -t 100 "${warm_order_wrapped[@]}"
done
aggregate hot naive-hot hot-order hot-wrapped naive-hot-wrapped hot-order-wrapped

run_case  order                1      -c 64 -T "$secs" -D products=50 -D coupon="$order_coupon" \
	-f $b/order1.sql -f $b/order2.sql -f $b/order3.sql
run_case  order-writes         1      -c 64 -T "$secs" -f $b/order_writes.sql

ran() { for c in "$@"; do [ -n "${tps[$c]:-}" ] || return 1; done; }

echo "== outcomes"
for line in "${checks[@]}"; do echo "$line"; done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
percent() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
verdict() { awk -v r="$1" -v bar="$2" 'BEGIN { print (r >= bar ? "meets" : "MISSES") }'; }

echo
echo "== results (2 cores shared; prepared statements; bare refusal cases by $b/calls.c; see $logs)"
printf '%-20s %8s %10s %8s %7s %9s  %s\n' case clients TPS txs failed "time(s)" "top wait events of the client backends (share of samples)"
for name in "${cases[@]}"; do
	[[ $name == *.* ]] && continue	# one run of a repeated case: in its median
	clients=$(sed -n 's/^number of clients: \([0-9]*\).*/\1/p' "$logs/$name.out")
	waits=$(q -c "SELECT string_agg(format('%s %s%%', wait, pct), ', ' ORDER BY pct DESC)
	              FROM (SELECT wait, round(100.0 * sum(backends) / sum(sum(backends)) OVER ())::int AS pct
	                    FROM bench.wait_samples WHERE run = '$name' OR run LIKE '$name.%' GROUP BY wait
	                    ORDER BY 2 DESC LIMIT 4) w")
	printf '%-20s %8s %10.0f %8d %7d %9.2f  %s\n' "$name" "$clients" "${tps[$name]}" "${processed[$name]}" \
		"${failed[$name]}" "$(awk -v n="${processed[$name]}" -v t="${tps[$name]}" 'BEGIN { print n / t }')" "$waits"
done

echo
echo "== the runs behind each median (tps, ascending)"
for name in "${cases[@]}"; do
	[ -z "${spread[$name]:-}" ] || printf '   %-20s %s\n' "$name" "${spread[$name]}"
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
# bars LABEL CASE BASE MIN: the bar for the bare and the wrapped form
bars() {
	bar "$1" bare "$2" "$3" "$4"
	bar "$1" wrapped "$2-wrapped" "$3-wrapped" "$4"
}
bars "issue_coupon / naive, ample quantity, 64 clients" issue naive-issue 3
bars "10,000-user flood: speed-up over naive, 50 clients" flood naive-flood 2
bars "sold-out refusals: issue_coupon / naive, 50 clients" reject naive-reject 1.5
# the headroom: how close each design's refusal comes to the floor
# (floor / naive-reject is the most any design's refusal could gain here)
for form in bare wrapped; do
	w=; [ $form = bare ] || w=-wrapped
	if ran reject$w naive-reject$w floor$w; then
		printf '   %-56s %-7s %6sx  (no bar: the floor; naive %sx of it, reject %sx)\n' \
			"refusal floor (SELECT 1/0) / naive-reject" $form "$(ratio "${tps[floor$w]}" "${tps[naive-reject$w]}")" \
			"$(ratio "${tps[naive-reject$w]}" "${tps[floor$w]}")" "$(ratio "${tps[reject$w]}" "${tps[floor$w]}")"
	fi
done
bars "hot stock 5,000/100: decrement_stock / naive" hot naive-hot 1.2
bars "hot stock 5,000/100: place_order / naive take" hot-order naive-hot 1.2
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
