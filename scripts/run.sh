#!/usr/bin/env bash
# `make run`: the whole product on this machine in one command.
#
# Installs missing Debian packages (scripts/setup.sh), builds and installs the
# extension, builds commerce-http, starts a private PostgreSQL cluster in
# .run/demo (port ${DEMO_PG_PORT:-5440}) with the extension, demo data and
# its maintenance scheduled (ops/sql/schedule-housekeeping.sql), and runs
# commerce-http on ${DEMO_LISTEN:-127.0.0.1:8080} in the foreground,
# with JWT authentication on (an HS256 secret made for the run, in
# .run/demo/jwt.key); it prints a customer's and an operator's token.
# Ctrl-C stops the daemon and the cluster (only what this script started).
# The cluster is recreated from scratch on every run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pg_dir=$root/.run/demo
pg_port=${DEMO_PG_PORT:-5440}
listen=${DEMO_LISTEN:-127.0.0.1:8080}

scripts/setup.sh
make -s
make -s install >/dev/null
make -s -C frontend

cluster_env=$(scripts/pg-cluster.sh fresh "$pg_dir" "$pg_port") || exit 1
eval "$cluster_env"
export PGDATABASE=postgres

daemon_pid=
stop_all() {
	trap - INT TERM EXIT
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -TERM "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
	scripts/pg-cluster.sh stop "$pg_dir" || true
	echo "run: stopped"
}
trap stop_all INT TERM EXIT

psql -XAtq -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION pg_commerce;
CREATE ROLE commerce_http LOGIN IN ROLE commerce_api;
SQL
psql -XAtq -v ON_ERROR_STOP=1 -f scripts/demo-data.sql >/dev/null
# the database's own maintenance, every minute from pg_cron (which
# scripts/pg-cluster.sh loads): housekeeping and the popular-products ranking
psql -XAtq -v ON_ERROR_STOP=1 -f ops/sql/schedule-housekeeping.sql >/dev/null

jwt_key=$pg_dir/jwt.key
(umask 077 && head -c 48 /dev/urandom >"$jwt_key")
frontend/commerce-http --listen "$listen" --jwt-key "$jwt_key" \
	--db "host=$PGHOST port=$PGPORT user=commerce_http dbname=postgres" &
daemon_pid=$!

for _ in $(seq 1 100); do
	curl -fs "http://$listen/readyz" >/dev/null 2>&1 && break
	kill -0 "$daemon_pid" 2>/dev/null || { echo "run: commerce-http failed to start" >&2; exit 1; }
	sleep 0.1
done

b="http://$listen"
# user 1's token (a customer) and an operator's, valid for a day
customer=$(frontend/commerce-token --key "$jwt_key" --ttl 86400 1)
admin=$(frontend/commerce-token --key "$jwt_key" --ttl 86400 --admin 1)
cat <<EOT

pg_commerce is running: commerce-http on $b, PostgreSQL in $pg_dir (port $pg_port).
  psql:  PGHOST=$PGHOST PGPORT=$PGPORT psql -U postgres postgres
  pg_cron runs commerce.run_housekeeping() and commerce.refresh_popular() every minute
  (SELECT * FROM cron.job_run_details; docs/housekeeping.md)
Tokens (a day each; more with: frontend/commerce-token --key $jwt_key SUB [--admin]):
  customer (user 1):  T=$customer
  operator:           A=$admin
Try (after the two assignments above):
  curl -s '$b/api/products?limit=3' -H "Authorization: Bearer \$T"
  curl -s $b/api/products/1 -H "Authorization: Bearer \$T"
  curl -s $b/api/users/1/balance -H "Authorization: Bearer \$T"
  curl -s -X POST $b/api/coupons/issue -H "Authorization: Bearer \$T" -H 'Content-Type: application/json' -d '{"couponId":1}'
  curl -s -X POST $b/api/orders -H "Authorization: Bearer \$T" -H 'Content-Type: application/json' \\
       -H 'Idempotency-Key: demo-1' -d '{"items":[{"productId":1,"quantity":1}],"couponId":1}'
  curl -s $b/api/orders/1 -H "Authorization: Bearer \$T"
  curl -s $b/api/users/2/balance -H "Authorization: Bearer \$T"     # 403: not user 1
  curl -s $b/api/users/2/balance -H "Authorization: Bearer \$A"     # an operator may
  curl -s $b/metrics                                                # no token needed
API: docs/openapi.yaml.  Ctrl-C stops everything.
EOT

wait "$daemon_pid"
