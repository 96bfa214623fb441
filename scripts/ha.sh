#!/usr/bin/env bash
# A primary and a synchronous standby with automatic failover, on loopback:
# two PostgreSQL 15 nodes run by Patroni, with one etcd member as Patroni's
# consensus store.  For the tests (tests/faults/run failover ...) and for
# trying failover by hand; docs/high-availability.md says why Patroni and
# what it does when a node is lost.
#
#   scripts/ha.sh up DIR [BASE_PORT]   start etcd and both nodes (bootstrapping
#                                      them on first use), create the extension
#                                      once on the primary; prints the env to use
#   scripts/ha.sh down DIR             stop both nodes and etcd (only what
#                                      this script started in DIR)
#   scripts/ha.sh status DIR           patronictl list: who leads, who is the
#                                      synchronous standby, the lag
#   scripts/ha.sh leader DIR           the leader's node number (1 or 2)
#   scripts/ha.sh kill-node DIR N      kill -9 node N's Patroni and every
#                                      PostgreSQL process of it (a machine lost)
#   scripts/ha.sh start-node DIR N     start node N's Patroni again: it rejoins
#                                      as a standby (pg_rewind when needed)
#   scripts/ha.sh wait-sync DIR        wait until a synchronous standby streams
#   scripts/ha.sh switchover DIR       planned switchover to the standby
#   scripts/ha.sh maintenance DIR on|off  Patroni's maintenance mode (patronictl
#                                      pause / resume, waiting for both nodes):
#                                      no failover, and Patroni leaves a paused
#                                      replay paused (PG 14+ replicas otherwise
#                                      resume it at their next loop)
#
# Ports from BASE_PORT (default 5460, kept in DIR/base_port): PostgreSQL on
# BASE and BASE+1, Patroni's REST API on BASE+3000 and +3001, etcd's client
# and peer ports on BASE+2000 and +2001.  Both nodes' Unix sockets are in
# DIR/sock.  Everything runs as the postgres user; connections from
# loopback are trusted (a private test set, like scripts/pg-cluster.sh).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
# libpq's variables (say the PGPORT=A,B this script prints) must not reach
# Patroni: PostgreSQL takes PGPORT as its port.
for v in $(compgen -e); do
	case "$v" in PGBIN) ;; PG*) unset "$v" ;; esac
done
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,32p' "$0"; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "$cmd" = up ] && [ -n "${3:-}" ]; then
	base=$3
else
	base=$(cat "$dir/base_port" 2>/dev/null || echo 5460)
fi
etcd_port=$((base + 2000))
pg_port() { echo $((base + $1 - 1)); }
rest_port() { echo $((base + 3000 + $1 - 1)); }

# Patroni's view of a node: the HTTP status of its REST API's health checks
# (/primary, /replica, /sync), 000 when it does not answer.
rest_status() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$(rest_port "$1")/$2" || true
}

wait_for() {
	local what=$1 seconds=$2; shift 2
	local deadline=$((SECONDS + seconds))
	until "$@"; do
		if [ $SECONDS -ge $deadline ]; then
			echo "ha: $what: not within $seconds s (logs in $dir/log)" >&2
			return 1
		fi
		sleep 0.2
	done
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_etcd() {
	alive "$dir/etcd.pid" && return 0
	as_pg sh -c 'echo $$ >"$1/etcd.pid"; exec etcd --name ha --data-dir "$1/etcd" \
		--listen-client-urls "http://127.0.0.1:$2" --advertise-client-urls "http://127.0.0.1:$2" \
		--listen-peer-urls "http://127.0.0.1:$3" --initial-advertise-peer-urls "http://127.0.0.1:$3" \
		--initial-cluster "ha=http://127.0.0.1:$3" --log-level warn >>"$1/log/etcd.log" 2>&1' \
		sh "$dir" "$etcd_port" $((etcd_port + 1)) </dev/null >/dev/null 2>&1 &
	wait_for "etcd healthy" 30 sh -c "curl -fs --max-time 1 http://127.0.0.1:$etcd_port/health | grep -q true"
}

# The node's Patroni configuration.  The dcs section is written to etcd at
# bootstrap (patronictl edit-config changes it later): ttl 10 s, loop_wait
# 2 s, retry_timeout 4 s (loop_wait + 2 * retry_timeout <= ttl), so that a
# dead leader's key expires within 10 s and the standby takes over.
# synchronous_mode: a commit returns only once the standby has flushed it,
# and only the synchronous standby may be promoted, so an acknowledged
# order survives the loss of either machine.  synchronous_mode_strict off:
# when the standby is lost, Patroni drops the requirement and the primary
# goes on alone (availability over a second copy; see the docs).
write_config() {
	local n=$1
	as_pg tee "$dir/node$n.yml" >/dev/null <<YAML
scope: pg_commerce_ha
name: node$n
log:
  level: WARNING
restapi:
  listen: 127.0.0.1:$(rest_port "$n")
  connect_address: 127.0.0.1:$(rest_port "$n")
etcd3:
  hosts: 127.0.0.1:$etcd_port
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    synchronous_mode_strict: false
    postgresql:
      use_pg_rewind: true
      parameters:
        max_connections: 200
        max_wal_senders: 10
        max_replication_slots: 10
        wal_log_hints: 'on'
        hot_standby: 'on'
        synchronous_commit: 'on'
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - data-checksums
postgresql:
  listen: 127.0.0.1:$(pg_port "$n")
  connect_address: 127.0.0.1:$(pg_port "$n")
  data_dir: $dir/node$n/data
  bin_dir: $PGBIN
  pgpass: $dir/node$n/pgpass
  authentication:
    superuser: {username: postgres, password: unused-trusted}
    replication: {username: replicator, password: unused-trusted}
    rewind: {username: postgres, password: unused-trusted}
  parameters:
    unix_socket_directories: '$dir/sock'
    shared_preload_libraries: pg_commerce   # sold-out hints (docs/design.md); a standby keeps none
    shared_buffers: 256MB
    log_min_messages: warning
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication replicator 127.0.0.1/32 trust
watchdog:
  mode: 'off'
YAML
}

start_node() {
	local n=$1
	alive "$dir/node$n.pid" && return 0
	as_pg sh -c 'echo $$ >"$1/node$2.pid"; exec patroni "$1/node$2.yml" >>"$1/log/node$2.log" 2>&1' \
		sh "$dir" "$n" </dev/null >/dev/null 2>&1 &
}

# The leader's node number, or nothing while there is none.
leader() {
	local n
	for n in 1 2; do
		[ "$(rest_status "$n" primary)" = 200 ] && { echo "$n"; return 0; }
	done
	return 1
}

sync_streams() {
	local n
	for n in 1 2; do
		[ "$(rest_status "$n" sync)" = 200 ] && return 0
	done
	return 1
}

postgres_pids_of() {
	# the postmaster of node N and every process it started
	local pidfile=$dir/node$1/data/postmaster.pid pm
	[ -f "$pidfile" ] || return 0
	pm=$(head -n 1 "$pidfile")
	kill -0 "$pm" 2>/dev/null || return 0
	echo "$pm"
	ps -o pid= --ppid "$pm" || true
}

print_env() {
	local hosts="127.0.0.1,127.0.0.1" ports
	ports="$(pg_port 1),$(pg_port 2)"
	echo "export PGHOST=$hosts PGPORT=$ports PGUSER=postgres PGTARGETSESSIONATTRS=read-write"
	echo "# conninfo for commerce-http: host=$hosts port=$ports target_session_attrs=read-write dbname=postgres user=commerce_http"
}

case "$cmd" in
up)
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
	as_pg mkdir -p "$dir/sock" "$dir/log" "$dir/node1" "$dir/node2"
	as_pg chmod 700 "$dir/node1" "$dir/node2"
	echo "$base" | as_pg tee "$dir/base_port" >/dev/null
	start_etcd
	write_config 1
	write_config 2
	start_node 1
	wait_for "a leader" 60 leader >/dev/null
	start_node 2
	wait_for "a synchronous standby" 90 sync_streams
	n=$(leader)
	# the extension, once, on the primary; the standby gets it by replication
	PGTARGETSESSIONATTRS=read-write psql -XAtq -h 127.0.0.1 -p "$(pg_port "$n")" -U postgres -d postgres \
		-v ON_ERROR_STOP=1 -c 'CREATE EXTENSION IF NOT EXISTS pg_commerce' >/dev/null
	echo "ha: up in $dir: node$n leads, the other streams synchronously (etcd on $etcd_port)" >&2
	print_env
	;;
down)
	for n in 1 2; do
		if alive "$dir/node$n.pid"; then kill -TERM "$(cat "$dir/node$n.pid")"; fi
	done
	for n in 1 2; do
		wait_for "node$n's Patroni to stop" 60 sh -c "! { [ -f '$dir/node$n.pid' ] && kill -0 \$(cat '$dir/node$n.pid') 2>/dev/null; }" || true
		# a PostgreSQL left behind by a Patroni that was killed
		if [ -f "$dir/node$n/data/postmaster.pid" ]; then
			as_pg "$PGBIN/pg_ctl" -D "$dir/node$n/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
		fi
	done
	if alive "$dir/etcd.pid"; then
		kill -TERM "$(cat "$dir/etcd.pid")"
		wait_for "etcd to stop" 30 sh -c "! kill -0 \$(cat '$dir/etcd.pid') 2>/dev/null" || true
	fi
	echo "ha: stopped in $dir" >&2
	;;
status)
	patronictl -c "$dir/node1.yml" list
	;;
leader)
	leader
	;;
kill-node)
	n=${3:?node}
	pids="$(cat "$dir/node$n.pid" 2>/dev/null || true) $(postgres_pids_of "$n")"
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	echo "ha: killed node$n ($(echo $pids | wc -w) processes)" >&2
	;;
start-node)
	start_node "${3:?node}"
	;;
wait-sync)
	wait_for "a synchronous standby" 120 sync_streams
	;;
maintenance)
	case ${3:?on or off} in
	on) patronictl -c "$dir/node1.yml" pause --wait ;;
	off) patronictl -c "$dir/node1.yml" resume --wait ;;
	*) echo "ha: maintenance on or off" >&2; exit 2 ;;
	esac
	;;
switchover)
	n=$(leader)
	patronictl -c "$dir/node1.yml" switchover --leader "node$n" --candidate "node$((3 - n))" --force
	;;
*)
	sed -n '2,32p' "$0"; exit 2 ;;
esac
