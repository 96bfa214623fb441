#!/usr/bin/env bash
# `make bench-pgbouncer`: pg_commerce behind PgBouncer (Debian's 1.18),
# measured.  One private cluster, one PgBouncer in front of it with two
# pools (database "tx": pool_mode transaction; "session": pool_mode
# session; 8 server connections each), and:
#   1. the extension's SQL through the transaction pool: pgbench, 64
#      clients multiplexed onto 8 server connections, the coupon flood
#      (10,000 users, 1,000 coupons) and hot stock (5,000 takes of 100
#      units), with the exact counts checked; unnamed statements
#      (-M extended) and named ones (-M prepared);
#   2. commerce-http (--auth none, GET /api/products/{id} with wrk, 64
#      connections) straight to PostgreSQL, through the session pool and
#      through the transaction pool: rate, non-2xx answers, what the
#      daemon logged.
# Installs pgbouncer with apt-get when it is missing (only this benchmark
# uses it).  Environment: BENCH_SECONDS (10), BENCH_PG_PORT (5478),
# BENCH_BOUNCER_PORT (6478), BENCH_HTTP_PORT (18099).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${BENCH_SECONDS:-10}
pg_port=${BENCH_PG_PORT:-5478}
bouncer_port=${BENCH_BOUNCER_PORT:-6478}
http_port=${BENCH_HTTP_PORT:-18099}
dir=$root/.run/bench-pgbouncer
work=$(mktemp -d)
daemon_pid=

command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || {
	echo "bench-pgbouncer: installing pgbouncer with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null
}
bouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
make -s -C frontend
cluster_env=$(scripts/pg-cluster.sh fresh "$dir/pg" "$pg_port") || exit 1
eval "$cluster_env"
export PGDATABASE=postgres
sock=$PGHOST

cleanup() {
	if [ -n "$daemon_pid" ]; then kill -TERM "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
	if [ -f "$dir/pgbouncer.pid" ]; then kill -TERM "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true; fi
	scripts/pg-cluster.sh stop "$dir/pg" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

psql -XAtq -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION pg_commerce;
CREATE ROLE commerce_http LOGIN IN ROLE commerce_api;
SELECT count(commerce.charge_balance(commerce.create_user('bouncer-' || g), 1000000)) FROM generate_series(1, 10000) g;
SELECT commerce.create_product('bouncer-' || g, 1000 + g, 1000000, 'bench') FROM generate_series(1, 100) g;
SELECT commerce.create_product('bouncer-hot', 1000, 100, 'bench', 16);   -- product 101
SELECT commerce.create_coupon('BOUNCER', 'fixed', 100, 1000);           -- coupon 1
-- pgbench 15 aborts a client at its first SQL error, and most calls of a
-- flood are refusals: these wrappers return the refusal's SQLSTATE instead
CREATE SCHEMA bouncer;
CREATE SEQUENCE bouncer.uid;
CREATE FUNCTION bouncer.issue(c bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM commerce.issue_coupon(nextval('bouncer.uid'), c);
	RETURN 'issued';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;
CREATE FUNCTION bouncer.take(p bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM commerce.decrement_stock(p, 1);
	RETURN 'taken';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;
SQL

mkdir -p "$dir"
cat >"$dir/userlist.txt" <<'EOF'
"postgres" ""
"commerce_http" ""
EOF
cat >"$dir/pgbouncer.ini" <<EOF
[databases]
tx = host=$sock port=$pg_port dbname=postgres pool_mode=transaction
session = host=$sock port=$pg_port dbname=postgres pool_mode=session

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
default_pool_size = 8
max_client_conn = 2000
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
ignore_startup_parameters = extra_float_digits
EOF
chown -R postgres "$dir"
runuser -u postgres -- "$bouncer" -d "$dir/pgbouncer.ini"
for _ in $(seq 1 50); do
	psql -h 127.0.0.1 -p "$bouncer_port" -d tx -XAtqc 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.1
done

# ---- 1. the SQL functions through the transaction pool ----------------------
printf 'SELECT bouncer.issue(1);\n' >"$work/issue.sql"
printf 'SELECT bouncer.take(101);\n' >"$work/take.sql"
pgbench_run() {   # label mode script transactions_per_client
	local out=$work/pgbench.out
	if pgbench -n -h 127.0.0.1 -p "$bouncer_port" -U postgres -M "$2" -c 64 -j 2 -t "$4" -f "$3" tx >"$out" 2>&1; then
		printf '  %-44s %8.0f tps\n' "$1" "$(awk '/^tps = / {print $3}' "$out")"
	else
		printf '  %-44s failed: %s\n' "$1" "$(grep -m1 -i 'error' "$out" | cut -c1-120)"
	fi
}
echo "bench-pgbouncer: PgBouncer $("$bouncer" --version | head -1 | awk '{print $2}'), 8 server connections per pool, cores: $(nproc)"
echo "1. the SQL functions through pool_mode=transaction (64 pgbench clients onto 8 server connections)"
pgbench_run "coupon flood, 10,048 users, -M extended" extended "$work/issue.sql" 157
issued=$(psql -XAtqc "SELECT count(*) || ' issued to ' || count(DISTINCT user_id) || ' users' FROM commerce.issued_coupons WHERE coupon_id = 1")
echo "     $issued (1000 expected); left: $(psql -XAtqc 'SELECT sum(quantity) FROM commerce.coupon_buckets WHERE coupon_id = 1')"
pgbench_run "hot stock, 5,056 takes of 100 units, -M extended" extended "$work/take.sql" 79
echo "     stock left: $(psql -XAtqc 'SELECT stock FROM commerce.get_product(101)') (0 expected)"
pgbench_run "the same, -M prepared (named statements)" prepared "$work/take.sql" 10

# ---- 2. commerce-http --------------------------------------------------------
cat >"$work/get_product.lua" <<'LUA'
request = function()
	return wrk.format("GET", "/api/products/" .. math.random(1, 100))
end
LUA
run_daemon() {   # label conninfo
	: >"$work/daemon.log"
	frontend/commerce-http --auth none --listen "127.0.0.1:$http_port" --threads 2 --pool-size 4 \
		--db "$2" 2>"$work/daemon.log" &
	daemon_pid=$!
	sleep 1.5
	local ready
	ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz")
	wrk -t2 -c64 -d"${seconds}s" -s "$work/get_product.lua" "http://127.0.0.1:$http_port" >"$work/wrk.out" 2>&1 || true
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" || true
	daemon_pid=
	local rate bad
	rate=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
	bad=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
	printf '  %-36s /readyz %s  %8.0f req/s  non-2xx: %s\n' "$1" "$ready" "${rate:-0}" "${bad:-0}"
	grep -v "listening on\|--auth none\|SIGTERM\|stopp\|drain" "$work/daemon.log" | sed 's/^[^ ]* commerce-http /     /' |
		sort | uniq -c | sort -rn | head -3 | cut -c1-160 || true
}
echo "2. commerce-http (2 threads x 4 connections, wrk 64 connections, GET /api/products/{id}, ${seconds}s)"
run_daemon "straight to PostgreSQL" "host=$sock port=$pg_port dbname=postgres user=commerce_http"
run_daemon "through pool_mode=session" "host=127.0.0.1 port=$bouncer_port dbname=session user=commerce_http"
run_daemon "through pool_mode=transaction" "host=127.0.0.1 port=$bouncer_port dbname=tx user=commerce_http"
