#!/usr/bin/env bash
# `make bench-read`: what --db-read buys.  One Patroni pair (scripts/ha.sh:
# a primary and its synchronous standby, on this one machine), one shop of
# 10,000 users and 100 products, and the catalogue reads a shop's visitors
# make (GET /api/products/{id}, the product list, popular products; wrk, 64
# connections) through two daemons in turn: one with every read on the
# primary, one with --db-read sending them to the standby (with as many
# connections as the primary pool: 2 threads x 4).  BENCH_RUNS runs
# of each, alternating, so that the machine's noise falls on both alike.
#
# Per run it prints the read rate and the CPU seconds each node's
# PostgreSQL spent (its postmaster, its backends and the children it
# reaped, from /proc), per 10,000 reads.  On one machine both nodes share the
# same two cores, so the rate says little about a real pair on two
# machines; the primary's CPU per read says what --db-read takes off it.
#
# Environment: BENCH_SECONDS (10), BENCH_RUNS (3), BENCH_HA_BASE_PORT (5476:
# PostgreSQL on 5476-5477, etcd on 7476-7477, Patroni on 8476-8477),
# BENCH_HTTP_PORT (18097), BENCH_THREADS (daemon threads, default cores).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${BENCH_SECONDS:-10}
runs=${BENCH_RUNS:-3}
base=${BENCH_HA_BASE_PORT:-5476}
http_port=${BENCH_HTTP_PORT:-18097}
threads=${BENCH_THREADS:-$(nproc)}
ha_dir=$root/.run/bench-ha
work=$(mktemp -d)
daemon_pid=

make -s -C frontend
cleanup() {
	if [ -n "$daemon_pid" ]; then kill -TERM "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
	scripts/ha.sh down "$ha_dir" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

scripts/ha.sh down "$ha_dir" >/dev/null 2>&1 || true
rm -rf "$ha_dir"
eval "$(scripts/ha.sh up "$ha_dir" "$base")"
export PGDATABASE=postgres
psql -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE ROLE commerce_http LOGIN IN ROLE commerce_api;
SELECT count(commerce.create_user('bench-' || g)) FROM generate_series(1, 10000) g;
SELECT commerce.create_product('bench-' || g, 1000 + g, 1000000, 'bench-' || (g % 5)) FROM generate_series(1, 100) g;
SQL
scripts/ha.sh wait-sync "$ha_dir" >/dev/null
leader=$(scripts/ha.sh leader "$ha_dir")
standby=$((3 - leader))
hosts="$ha_dir/sock,$ha_dir/sock"
ports="$base,$((base + 1))"

cat >"$work/catalogue.lua" <<'LUA'
-- what a visitor of the sale's pages reads: mostly products, then lists
request = function()
	local r = math.random(1, 10)
	if r <= 7 then
		return wrk.format("GET", "/api/products/" .. math.random(1, 100))
	elseif r <= 9 then
		return wrk.format("GET", "/api/products?limit=20&category=bench-" .. math.random(0, 4))
	end
	return wrk.format("GET", "/api/products/popular?limit=10")
end
LUA

# CPU seconds (user + system) of node N's PostgreSQL so far: the postmaster,
# its live children, and the children it has reaped.
node_cpu() {
	local pm ticks
	pm=$(head -1 "$ha_dir/node$1/data/postmaster.pid")
	ticks=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat")
	for child in $(ps -o pid= --ppid "$pm"); do
		ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$child/stat" 2>/dev/null || echo 0)))
	done
	awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}

start_daemon() {   # more options...
	frontend/commerce-http --auth none --listen "127.0.0.1:$http_port" --threads "$threads" \
		--db "host=$hosts port=$ports user=commerce_http dbname=postgres target_session_attrs=read-write" \
		"$@" 2>>"$work/daemon.log" &
	daemon_pid=$!
	for _ in $(seq 1 100); do
		curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	# the standby pool is used once the first lag probes have answered
	sleep 1
}
stop_daemon() {
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" || true
	daemon_pid=
}

# one run: prints "rate primary_cpu_per_10k standby_cpu_per_10k"
measure() {
	local p0 s0 p1 s1 rate
	p0=$(node_cpu "$leader")
	s0=$(node_cpu "$standby")
	wrk -t2 -c64 -d"${seconds}s" -s "$work/catalogue.lua" "http://127.0.0.1:$http_port" >"$work/wrk.out"
	p1=$(node_cpu "$leader")
	s1=$(node_cpu "$standby")
	if grep -q "Non-2xx" "$work/wrk.out"; then grep "Non-2xx" "$work/wrk.out" >&2; fi
	rate=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
	awk -v r="$rate" -v s="$seconds" -v p0="$p0" -v p1="$p1" -v s0="$s0" -v s1="$s1" \
		'BEGIN {n = r * s / 10000; printf "%.0f %.2f %.2f\n", r, (p1 - p0) / n, (s1 - s0) / n}'
}

echo "bench-read: ${seconds}s per run, $runs runs per mode, wrk 64 connections, daemon threads: $threads," \
	"cores: $(nproc); primary node$leader, synchronous standby node$standby"
printf '%-4s %-24s %12s %22s %22s\n' run "catalogue reads on" "reads/s" "primary CPU s/10k" "standby CPU s/10k"
for run in $(seq 1 "$runs"); do
	start_daemon
	read -r rate pc sc < <(measure)
	printf '%-4s %-24s %12s %22s %22s\n' "$run" "the primary" "$rate" "$pc" "$sc"
	stop_daemon
	# as many standby connections as the primary pool has (--pool-size 4), so that only the database differs
	start_daemon --db-read "host=$hosts port=$ports user=commerce_http dbname=postgres target_session_attrs=prefer-standby" \
		--db-read-pool-size 4
	read -r rate pc sc < <(measure)
	routed=$(curl -s "http://127.0.0.1:$http_port/metrics" | awk '/^commerce_http_catalogue_reads_total\{database="standby"\}/ {print $2}')
	printf '%-4s %-24s %12s %22s %22s   (%s reads sent to the standby)\n' "$run" "the standby (--db-read)" "$rate" "$pc" "$sc" "$routed"
	stop_daemon
done
