#!/usr/bin/env bash
# tests/schemathesis/run.sh — docs/openapi.yaml checked by a real client:
# schemathesis (pinned, scripts/install-schemathesis.sh) generates requests
# from the spec, valid and invalid, sends them to the live daemon against a
# real cluster with the demo shop, and checks every answer against the spec:
# no 5xx, documented statuses, bodies and headers as described, valid input
# accepted and invalid input refused.  A bounded, seeded run (the same cases
# every time); SCHEMATHESIS_EXAMPLES and SCHEMATHESIS_SEED change that.
#
# Its own cluster (.run/schemathesis, port 5449) and daemon (port 18150).
# Last line "N passed, M failed" (one run); exit status non-zero on a failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=$root/.run/schemathesis
port=${SCHEMATHESIS_PGPORT:-5449}
http_port=${SCHEMATHESIS_HTTP_PORT:-18150}
examples=${SCHEMATHESIS_EXAMPLES:-100}
seed=${SCHEMATHESIS_SEED:-20261202}

st=$("$root/scripts/install-schemathesis.sh" | tail -n 1) || { echo "0 passed, 1 failed"; exit 1; }
cflags=""
[ "${CI:-}" = "true" ] && cflags="-Werror"
make -s -C "$root/frontend" EXTRA_CFLAGS="$cflags" || { echo "0 passed, 1 failed"; exit 1; }

cluster_env=$("$root/scripts/pg-cluster.sh" fresh "$dir" "$port") || { echo "0 passed, 1 failed"; exit 1; }
eval "$cluster_env"
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	"$root/scripts/pg-cluster.sh" stop "$dir" 2>/dev/null || true
}
trap cleanup EXIT
psql -XAtq -d postgres -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pg_commerce" \
	-c "CREATE ROLE commerce_http LOGIN IN ROLE commerce_api" \
	-c "CREATE ROLE commerce_http_operator LOGIN IN ROLE commerce_operator" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
psql -XAtq -d postgres -v ON_ERROR_STOP=1 -f "$root/scripts/demo-data.sql" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }

# JWT authentication on, as in production; schemathesis sends an operator's
# token, which may act for every user id it makes up (a customer's would get
# 403 for all but one)
head -c 48 /dev/urandom >"$dir/jwt.key"
token=$("$root/frontend/commerce-token" --key "$dir/jwt.key" --admin --ttl 3600 1) || { echo "0 passed, 1 failed"; exit 1; }
"$root/frontend/commerce-http" --listen "127.0.0.1:$http_port" --threads 1 --pool-size 2 \
	--jwt-key "$dir/jwt.key" --operator-db "host=$PGHOST port=$port user=commerce_http_operator dbname=postgres" \
	--db "host=$PGHOST port=$port user=commerce_http dbname=postgres" >"$dir/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null && break
	sleep 0.1
done

cd "$here"	# schemathesis.toml: the checks' settings
# failures it remembers from an earlier run would be replayed first: same cases every time
rm -rf "$here/.schemathesis"
"$st" run "$root/docs/openapi.yaml" --url "http://127.0.0.1:$http_port" -H "Authorization: Bearer $token" \
	--max-examples "$examples" --seed "$seed" --workers 1 --no-color
rc=$?
if [ "$rc" -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit "$rc"
