#!/bin/bash
# The database container's entrypoint (docker/postgres.Dockerfile).
#   first start (no PG_VERSION in PGDATA): initdb as the postgres user, the
#     superuser's password from POSTGRES_PASSWORD (required then; connections
#     over TCP authenticate with scram-sha-256, the Unix socket by peer), then
#     every /docker-entrypoint-initdb.d/*.sh and *.sql against a server that
#     listens on the socket only;
#   every start: postgres on PGPORT (default 5432), with any arguments given
#     (e.g. -c max_connections=400); SIGTERM or SIGINT stop it with a fast
#     shutdown (in-flight transactions rolled back, nothing committed lost),
#     which is what `docker stop` means here.
set -euo pipefail
bin=/usr/lib/postgresql/${PG_MAJOR:-15}/bin
export PGDATA=${PGDATA:-/var/lib/postgresql/data} PGPORT=${PGPORT:-5432}
export POSTGRES_USER=postgres POSTGRES_DB=postgres
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
say() { echo "db-entrypoint: $*"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ]; then
		say "PGDATA is empty and POSTGRES_PASSWORD is not set: set it to initialise the database" >&2
		exit 1
	fi
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	chown postgres "$pwfile"
	say "initdb in $PGDATA"
	as_postgres "$bin/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
		--auth-local=peer --auth-host=scram-sha-256 >/dev/null
	rm -f "$pwfile"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
	cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
unix_socket_directories = '/run/postgresql'
# per-statement figures for the load tests' reports; pg_commerce's sold-out
# hints (docs/design.md) need it preloaded
shared_preload_libraries = 'pg_stat_statements,pg_commerce'
CONF
	as_postgres "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses='' -p $PGPORT" -w -l /tmp/init.log start >/dev/null
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sh) say "running $f"; as_postgres env PGHOST=/run/postgresql bash "$f" ;;
		*.sql) say "running $f"; as_postgres psql -h /run/postgresql -v ON_ERROR_STOP=1 -U postgres -d postgres -f "$f" >/dev/null ;;
		esac
	done
	as_postgres "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
	say "initialised"
fi

# setpriv itself in the background (not the function: bash would fork a
# subshell for it, and $! would be that subshell rather than postgres)
setpriv --reuid=postgres --regid=postgres --init-groups -- "$bin/postgres" -D "$PGDATA" -p "$PGPORT" "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null' TERM INT
# wait returns early (above 128) when a trapped signal arrives; the second
# wait gives postgres's own exit status (bash keeps it once reaped)
status=0
wait "$pid" || status=$?
if [ "$status" -gt 128 ]; then
	status=0
	wait "$pid" || status=$?
fi
exit "$status"
