#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for tests, benchmarks and `make run`.
#
#   scripts/pg-cluster.sh start DIR PORT   initdb (once) and start; prints the env to use
#   scripts/pg-cluster.sh fresh DIR PORT   stop the cluster in DIR if any, delete DIR,
#                                          then start as above: a new, empty cluster
#   scripts/pg-cluster.sh stop DIR         fast shutdown of the cluster in DIR
#   scripts/pg-cluster.sh env DIR          print PGHOST/PGPORT/PGUSER lines for DIR
#
# The cluster runs as the `postgres` user (initdb and postgres refuse root),
# listens on 127.0.0.1:PORT and on a Unix socket in DIR/sock, trusts local
# connections, and loads pg_stat_statements and pg_cron (jobs run as
# background workers in database postgres: ops/sql/schedule-housekeeping.sql
# schedules the extension's maintenance there).  Only the postmaster whose
# pid file is in DIR is ever stopped.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,14p' "$0"; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

print_env() {
	local port
	port=$(cat "$dir/port")
	echo "export PGHOST=$dir/sock PGPORT=$port PGUSER=postgres"
}

stop_cluster() {
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || true
		echo "pg-cluster: stopped $dir" >&2
	fi
}

case "$cmd" in
fresh)
	stop_cluster
	rm -rf "$dir"
	exec "$0" start "$dir" "${3:?port}"
	;;
start)
	port=${3:?port}
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
		as_pg mkdir -p "$dir/sock"
		as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
		# pg_cron runs each job in a background worker of its own, so it needs
		# no connection, password or pg_hba.conf line; max_worker_processes
		# leaves room for its launcher, a worker per running job (two of ours
		# at most) and parallel query's eight
		cat >>"$dir/data/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
max_connections = 400
shared_buffers = 512MB
work_mem = 8MB
max_wal_size = 4GB
checkpoint_timeout = 15min
shared_preload_libraries = 'pg_stat_statements,pg_cron,pg_commerce'
pg_stat_statements.track = all
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 20
track_io_timing = on
log_min_messages = warning
log_lock_waits = on
deadlock_timeout = 1s
CONF
	fi
	echo "$port" >"$dir/port"
	sed -i "/^port = /d" "$dir/data/postgresql.auto.conf"
	echo "port = $port" >>"$dir/data/postgresql.auto.conf"
	if as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		echo "pg-cluster: already running in $dir" >&2
	else
		as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
		echo "pg-cluster: started in $dir on port $port" >&2
	fi
	print_env
	;;
stop)
	stop_cluster
	;;
env)
	print_env
	;;
*)
	sed -n '2,14p' "$0"; exit 2 ;;
esac
