#!/usr/bin/env bash
# citus-prototype.sh — a throw-away Citus prototype of pg_commerce: does the
# extension scale past one primary when its tables are distributed by Citus?
#
# Usage (as root; the clusters run as the postgres user):
#   bash scripts/citus-prototype.sh up    DIR   # coordinator :5480, workers :5481 :5482
#   bash scripts/citus-prototype.sh check DIR   # coupon flood + hot stock, exact counts
#   bash scripts/citus-prototype.sh down  DIR   # stop the three clusters started by `up`
# DIR is e.g. .run/citus (data dirs DIR/coord DIR/w1 DIR/w2, sockets
# and logs in DIR).  Environment knobs:
#   LAYOUT=delegated (default) | coordinator  how `up` distributes the schema
#     delegated:   users-side tables distributed by user id, catalogue and
#                  coupon tables as reference tables, and issue_coupon /
#                  place_order delegated to the worker holding the user's shard
#                  (create_distributed_function ... distribution_arg_name).
#     coordinator: the same tables, no function delegation (calls run on the
#                  coordinator).
#   FLOOD_USERS=10000 (fixture) FLOOD_CALLS=FLOOD_USERS COUPON_QTY=1000 HOT_CALLS=5000
#   HOT_STOCK=100 CLIENTS=32 FLOOD_FN=commerce.issue_coupon HOT_FN=decrement_stock|place_order
#   STOCK_LAYOUT=reference (default) | distributed  (stock_buckets by product_id)
#   CITUS_BUILD_DIR=DIR/build  where Citus 12.1.9 is built if citus.so is missing
#
# Citus is built from ../shared/vendor/citus-12.1.9.tar.xz (beside the
# repository; CITUS_TARBALL overrides it) and installed
# into the system PostgreSQL 15 only when citus.so is missing from
# $(pg_config --pkglibdir); build packages are apt-get installed only if missing.
# `check` prints the figures and PASS/FAIL per check and exits 1 on any FAIL.
# The load is deliberately small (a shared 2-core machine): 10,000 + 5,000
# single-statement calls from at most CLIENTS psql clients.
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
CITUS_TARBALL=${CITUS_TARBALL:-$(cd "$(dirname "$0")/../.." && pwd)/shared/vendor/citus-12.1.9.tar.xz}
NODES=(coord w1 w2)
declare -A PORT=([coord]=5480 [w1]=5481 [w2]=5482)
LAYOUT=${LAYOUT:-delegated}
STOCK_LAYOUT=${STOCK_LAYOUT:-reference}
FLOOD_USERS=${FLOOD_USERS:-10000}
FLOOD_CALLS=${FLOOD_CALLS:-$FLOOD_USERS}
COUPON_QTY=${COUPON_QTY:-1000}
HOT_CALLS=${HOT_CALLS:-5000}
HOT_STOCK=${HOT_STOCK:-100}
CLIENTS=${CLIENTS:-32}

die() { echo "citus-prototype: $*" >&2; exit 2; }
log() { echo "== $*"; }

# psql as postgres against node $1 (socket in $DIR), remaining args to psql
q() {
	local node=$1; shift
	runuser -u postgres -- "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		-h "$DIR" -p "${PORT[$node]}" -d postgres "$@"
}

ensure_citus() {
	local libdir
	libdir=$("$PG_CONFIG" --pkglibdir)
	if [[ -f $libdir/citus.so ]]; then
		return
	fi
	local pkgs=(postgresql-server-dev-15 liblz4-dev libzstd-dev libcurl4-openssl-dev libkrb5-dev
		libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev make gcc xz-utils)
	local missing=()
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ((${#missing[@]})); then
		log "apt-get install ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
	fi
	local build=${CITUS_BUILD_DIR:-$DIR/build}
	mkdir -p "$build"
	log "building Citus 12.1.9 in $build"
	local t0=$SECONDS
	rm -rf "$build/citus-12.1.9"
	tar -C "$build" -xf "$CITUS_TARBALL"
	(cd "$build/citus-12.1.9" && ./configure PG_CONFIG="$PG_CONFIG" >"$build/configure.log" &&
		make -j2 >"$build/make.log" && make install >"$build/install.log")
	log "Citus built and installed in $((SECONDS - t0)) s"
}

running() { [[ -f $DIR/$1/postmaster.pid ]] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DIR/$1" status >/dev/null 2>&1; }

init_node() {
	local n=$1 d=$DIR/$1
	[[ -f $d/PG_VERSION ]] && return
	runuser -u postgres -- "$PG_BIN/initdb" -D "$d" -U postgres --auth=trust -E UTF8 --no-sync >"$DIR/$n.initdb.log"
	cat >>"$d/postgresql.conf" <<EOF
# citus-prototype.sh
port = ${PORT[$n]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
shared_preload_libraries = 'citus'
max_connections = 300
max_prepared_transactions = 300
shared_buffers = 64MB
fsync = off                     # a prototype on a shared machine: correctness, not durability
synchronous_commit = off
full_page_writes = off
wal_level = logical
log_min_messages = warning
log_line_prefix = '%m [%p] '
citus.max_shared_pool_size = 250
EOF
}

start_node() {
	local n=$1
	running "$n" && return
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DIR/$n" -l "$DIR/$n.log" -w -t 60 start >/dev/null
}

cmd_up() {
	ensure_citus
	mkdir -p "$DIR"
	chown postgres:postgres "$DIR"
	local t0=$SECONDS
	for n in "${NODES[@]}"; do init_node "$n"; done
	for n in "${NODES[@]}"; do start_node "$n"; done
	log "clusters initialised and started in $((SECONDS - t0)) s"
	if [[ $(q coord -c "SELECT count(*) FROM pg_extension WHERE extname = 'pg_commerce'") == 1 ]]; then
		log "pg_commerce already set up on the coordinator (layout $(q coord -c "SELECT value FROM proto.setting WHERE key = 'layout'")); nothing to do"
		return
	fi
	for n in "${NODES[@]}"; do q "$n" -c "CREATE EXTENSION IF NOT EXISTS citus"; done
	q coord <<SQL
SELECT citus_set_coordinator_host('127.0.0.1', ${PORT[coord]});
SELECT citus_add_node('127.0.0.1', ${PORT[w1]});
SELECT citus_add_node('127.0.0.1', ${PORT[w2]});
SQL
	log "nodes: $(q coord -c "SELECT string_agg(nodename || ':' || nodeport || '(' || noderole || ',group ' || groupid || ')', ' ' ORDER BY nodeport) FROM pg_dist_node")"
	t0=$SECONDS
	q coord -c "CREATE EXTENSION pg_commerce"
	log "CREATE EXTENSION pg_commerce on the coordinator; on the workers: w1=$(q w1 -c "SELECT extversion FROM pg_extension WHERE extname='pg_commerce'") w2=$(q w2 -c "SELECT extversion FROM pg_extension WHERE extname='pg_commerce'")"
	distribute
	log "schema distributed (layout $LAYOUT) in $((SECONDS - t0)) s"
	t0=$SECONDS
	load_fixture
	log "fixture loaded in $((SECONDS - t0)) s"
}

# The distribution (see the findings: it is the one that the schema's
# constraints let through with the fewest changes).
distribute() {
	local stock_sql="SELECT create_reference_table('commerce.stock_buckets');"
	[[ $STOCK_LAYOUT == distributed ]] &&
		stock_sql="SELECT create_distributed_table('commerce.stock_buckets', 'product_id', colocate_with => 'none');"
	q coord <<SQL
SET citus.shard_count = 4;           -- 2 shards per worker are plenty for 10k users
SET citus.shard_replication_factor = 1;
SET client_min_messages = warning;
-- 1. Citus converts local tables that reference a reference table into
--    "Citus local tables" and creates their shells on the workers, where
--    CREATE EXTENSION (propagated) already made them: "relation already
--    exists".  So every foreign key goes first and comes back afterwards.
ALTER TABLE commerce.wallet_ledger  DROP CONSTRAINT wallet_ledger_user_id_fkey;
ALTER TABLE commerce.stock_buckets  DROP CONSTRAINT stock_buckets_product_id_fkey;
ALTER TABLE commerce.coupon_buckets DROP CONSTRAINT coupon_buckets_coupon_id_fkey;
ALTER TABLE commerce.orders         DROP CONSTRAINT orders_user_id_fkey;
ALTER TABLE commerce.order_items    DROP CONSTRAINT order_items_order_id_fkey;
ALTER TABLE commerce.issued_coupons DROP CONSTRAINT issued_coupons_coupon_id_fkey;
ALTER TABLE commerce.issued_coupons DROP CONSTRAINT issued_coupons_user_id_fkey;
ALTER TABLE commerce.orders         DROP CONSTRAINT orders_issued_coupon_id_fkey;
ALTER TABLE commerce.payments       DROP CONSTRAINT payments_order_id_fkey;
-- 2. A distributed table's primary key must contain its distribution
--    column: the user-side tables get (user_id, id), payments (order_id, id).
ALTER TABLE commerce.wallet_ledger  DROP CONSTRAINT wallet_ledger_pkey,  ADD PRIMARY KEY (user_id, id);
ALTER TABLE commerce.orders         DROP CONSTRAINT orders_pkey,         ADD PRIMARY KEY (user_id, id);
ALTER TABLE commerce.issued_coupons DROP CONSTRAINT issued_coupons_pkey, ADD PRIMARY KEY (user_id, id);
ALTER TABLE commerce.payments       DROP CONSTRAINT payments_pkey,       ADD PRIMARY KEY (order_id, id);
-- 3. catalogue and coupon policy: small, read by every call, written rarely
SELECT create_reference_table('commerce.products');
SELECT create_reference_table('commerce.coupons');
SELECT create_reference_table('commerce.coupon_buckets');
-- the stock buckets: a reference table (default) or by product id
$stock_sql
-- 4. the customer side, co-located by user id
SELECT create_distributed_table('commerce.users', 'id');
SELECT create_distributed_table('commerce.wallet_ledger', 'user_id', colocate_with => 'commerce.users');
SELECT create_distributed_table('commerce.orders', 'user_id', colocate_with => 'commerce.users');
SELECT create_distributed_table('commerce.issued_coupons', 'user_id', colocate_with => 'commerce.users');
SELECT create_distributed_table('commerce.idempotency_keys', 'user_id', colocate_with => 'commerce.users');
-- 5. order lines and payments carry no user id: by order id, their own group
SELECT create_distributed_table('commerce.order_items', 'order_id', colocate_with => 'none');
SELECT create_distributed_table('commerce.payments', 'order_id', colocate_with => 'commerce.order_items');
SELECT create_distributed_table('commerce.outbox', 'id', colocate_with => 'none');
SELECT create_distributed_table('commerce.sales_stats', 'product_id', colocate_with => 'none');
SQL
	# 6. the foreign keys, back under new names (the workers' shells are the
	#    extension's own tables and still carry the old ones); each one on its
	#    own, so that the ones Citus refuses are reported and skipped
	local fk
	while IFS= read -r fk; do
		[[ -n $fk ]] || continue
		if out=$(q coord -c "$fk" 2>&1); then
			log "kept:    $fk"
		else
			log "refused: $fk -- $(echo "$out" | grep -m1 ERROR)"
		fi
	done <<'FKS'
ALTER TABLE commerce.stock_buckets  ADD CONSTRAINT stock_buckets_product_fk  FOREIGN KEY (product_id) REFERENCES commerce.products(id)
ALTER TABLE commerce.coupon_buckets ADD CONSTRAINT coupon_buckets_coupon_fk  FOREIGN KEY (coupon_id) REFERENCES commerce.coupons(id)
ALTER TABLE commerce.wallet_ledger  ADD CONSTRAINT wallet_ledger_user_fk     FOREIGN KEY (user_id) REFERENCES commerce.users(id)
ALTER TABLE commerce.orders         ADD CONSTRAINT orders_user_fk            FOREIGN KEY (user_id) REFERENCES commerce.users(id)
ALTER TABLE commerce.issued_coupons ADD CONSTRAINT issued_coupons_user_fk    FOREIGN KEY (user_id) REFERENCES commerce.users(id)
ALTER TABLE commerce.issued_coupons ADD CONSTRAINT issued_coupons_coupon_fk  FOREIGN KEY (coupon_id) REFERENCES commerce.coupons(id)
ALTER TABLE commerce.orders         ADD CONSTRAINT orders_issued_coupon_fk   FOREIGN KEY (user_id, issued_coupon_id) REFERENCES commerce.issued_coupons(user_id, id)
FKS
}

# Functions delegated to the worker that holds the first argument's shard.
delegate_functions() {
	[[ $LAYOUT == delegated ]] || return 0
	q coord <<'SQL'
SELECT create_distributed_function('commerce.issue_coupon(bigint,bigint)', 'user_id', colocate_with => 'commerce.users');
SELECT create_distributed_function('commerce.place_order(bigint,jsonb,bigint,text)', 'user_id', colocate_with => 'commerce.users');
SQL
}

# A shop like tests/load/seed: users with wallets (ample for many runs), a
# few ordinary products.  The coupon and the hot product are made fresh by
# every `check`, so that it can be run again and again.
load_fixture() {
	delegate_functions
	q coord <<SQL
CREATE SCHEMA proto;
CREATE TABLE proto.setting (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO proto.setting VALUES ('layout', '$LAYOUT, stock_buckets $STOCK_LAYOUT');
-- one statement: routed inserts into the users' shards, 2PC at commit
SELECT count(commerce.create_user('citus-user-' || i)) FROM generate_series(1, $FLOOD_USERS) i;
-- (a SELECT of charge_balance over commerce.users would be pushed down to
-- the shards and nest distributed queries: one call at a time instead)
DO \$\$
DECLARE uid bigint;
BEGIN
	FOR uid IN SELECT id FROM commerce.users ORDER BY id LOOP
		PERFORM commerce.charge_balance(uid, 100000000);
	END LOOP;
END
\$\$;
SELECT count(commerce.create_product('citus-product-' || i, 1000 + i, 100000, 'citus', 8))
FROM generate_series(1, 10) i;
SQL
}

# run_clients NAME SQLFILE_PREFIX: runs $DIR/run/NAME.N.sql files in parallel
# psql clients against the coordinator, one autocommit statement a line.
run_clients() {
	local name=$1 pids=() f
	for f in "$RUN"/"$name".*.sql; do
		runuser -u postgres -- "$PG_BIN/psql" -X -q -A -t -h "$DIR" -p "${PORT[coord]}" -d postgres \
			-f "$f" >"${f%.sql}.out" 2>"${f%.sql}.err" &
		pids+=($!)
	done
	local rc=0
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	return $rc
}

# write_calls NAME TEMPLATE IDS...: spreads one statement per id (TEMPLATE
# with {} for the id) round-robin over CLIENTS files
write_calls() {
	local name=$1 template=$2
	shift 2
	rm -f "$RUN/$name".*
	printf '%s\n' "$@" | awk -v n="$CLIENTS" -v t="$template" -v out="$RUN/$name" '
		{ s = t; gsub(/\{\}/, $1, s); print s > (out "." (NR % n) ".sql") }'
}

# outcome NAME: "ok=N" plus the count of each error message
outcome() {
	local name=$1
	echo "ok=$(cat "$RUN/$name".*.out | grep -c '^[0-9-]' || true)"
	cat "$RUN/$name".*.err | grep '^psql:.*ERROR:' | sed 's/.*ERROR:  *//' | sort | uniq -c |
		awk '{c=$1; $1=""; printf "  error x%d:%s\n", c, $0}'
}

cmd_check() {
	running coord && running w1 && running w2 || die "clusters not running: run up first"
	RUN=$DIR/run
	mkdir -p "$RUN" && chown postgres:postgres "$RUN"
	local flood_fn=${FLOOD_FN:-commerce.issue_coupon} hot_fn=${HOT_FN:-decrement_stock}
	local tag
	tag=$(date +%s)
	local coupon product
	coupon=$(q coord -c "SELECT commerce.create_coupon('CITUS-$tag', 'fixed', 500, $COUPON_QTY)")
	product=$(q coord -c "SELECT commerce.create_product('citus-hot-$tag', 9900, $HOT_STOCK, 'hot', 8)")
	mapfile -t users < <(q coord -c "SELECT id FROM commerce.users ORDER BY id LIMIT $FLOOD_CALLS")
	((${#users[@]} == FLOOD_CALLS)) || die "fixture has ${#users[@]} users, want $FLOOD_CALLS"
	log "layout $(q coord -c "SELECT value FROM proto.setting WHERE key = 'layout'"); coupon $coupon ($COUPON_QTY units), hot product $product ($HOT_STOCK units), $CLIENTS clients per check"
	write_calls flood "SELECT $flood_fn({}, $coupon);" "${users[@]}"
	local hot_ids
	mapfile -t hot_ids < <(printf '%s\n' "${users[@]}" | head -n "$HOT_CALLS")
	((${#hot_ids[@]} == HOT_CALLS)) || die "need $HOT_CALLS users for the hot-stock calls"
	if [[ $hot_fn == place_order ]]; then
		write_calls hot "SELECT order_id FROM commerce.place_order({}, '[{\"product_id\": $product, \"quantity\": 1}]');" "${hot_ids[@]}"
	else
		write_calls hot "SELECT commerce.decrement_stock($product, 1);" "${hot_ids[@]}"
	fi
	chown -R postgres:postgres "$RUN"

	local t0 t1 t2 t_flood t_hot
	t0=$(date +%s.%N)
	( run_clients flood; date +%s.%N >"$RUN/flood.end" ) &
	local fpid=$!
	( run_clients hot; date +%s.%N >"$RUN/hot.end" ) &
	local hpid=$!
	wait $fpid $hpid || true
	t1=$(cat "$RUN/flood.end"); t2=$(cat "$RUN/hot.end")
	t_flood=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'); t_hot=$(awk -v a="$t0" -v b="$t2" 'BEGIN {print b - a}')

	local fail=0 issued distinct holders_twice remaining ok
	echo
	echo "-- (a) coupon flood: ${#users[@]} distinct users x $flood_fn(user, $coupon), run concurrently with (b)"
	outcome flood
	ok=$(cat "$RUN"/flood.*.out | grep -c '^[0-9]' || true)
	read -r issued distinct < <(q coord -F' ' -c "SELECT count(*), count(DISTINCT user_id) FROM commerce.issued_coupons WHERE coupon_id = $coupon")
	holders_twice=$(q coord -c "SELECT count(*) FROM (SELECT user_id FROM commerce.issued_coupons WHERE coupon_id = $coupon GROUP BY user_id HAVING count(*) > 1) d")
	remaining=$(q coord -c "SELECT remaining FROM commerce.get_coupon($coupon)")
	printf '  calls=%d wall=%.2fs (%.0f calls/s)  issued rows=%d distinct users=%d users holding two=%d remaining=%s acknowledged=%d\n' \
		"${#users[@]}" "$t_flood" "$(awk -v n="${#users[@]}" -v t="$t_flood" 'BEGIN {print n / t}')" "$issued" "$distinct" "$holders_twice" "$remaining" "$ok"
	if ((issued == COUPON_QTY && distinct == issued && holders_twice == 0 && remaining == 0 && ok == issued)); then
		echo "  PASS coupon flood: exactly $COUPON_QTY issued, nobody twice, 0 left"
	else
		echo "  FAIL coupon flood: want $COUPON_QTY issued (= acknowledged), nobody twice, 0 left"
		fail=1
	fi

	local stock minb sold
	echo
	echo "-- (b) hot stock: $HOT_CALLS x $hot_fn for product $product ($HOT_STOCK units), run concurrently with (a)"
	outcome hot
	ok=$(cat "$RUN"/hot.*.out | grep -c '^[0-9]' || true)
	read -r stock minb < <(q coord -F' ' -c "SELECT sum(quantity), min(quantity) FROM commerce.stock_buckets WHERE product_id = $product")
	sold=$(q coord -c "SELECT coalesce(sum(quantity), 0) FROM commerce.order_items WHERE product_id = $product")
	printf '  calls=%d wall=%.2fs (%.0f calls/s)  succeeded=%d stock left=%s lowest bucket=%s units in order_items=%s\n' \
		"$HOT_CALLS" "$t_hot" "$(awk -v n="$HOT_CALLS" -v t="$t_hot" 'BEGIN {print n / t}')" "$ok" "$stock" "$minb" "$sold"
	if ((ok == HOT_STOCK && stock == 0 && minb >= 0)) && { [[ $hot_fn != place_order ]] || ((sold == HOT_STOCK)); }; then
		echo "  PASS hot stock: exactly $HOT_STOCK succeeded, stock 0, never negative"
	else
		echo "  FAIL hot stock: want exactly $HOT_STOCK successes, stock 0, no bucket below 0"
		fail=1
	fi
	echo
	if ((fail)); then echo "RESULT: FAIL"; else echo "RESULT: PASS"; fi
	return $fail
}

cmd_down() {
	local stopped=0
	for n in "${NODES[@]}"; do
		if running "$n"; then
			runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DIR/$n" -m fast -w -t 60 stop >/dev/null
			stopped=$((stopped + 1))
		fi
	done
	log "stopped $stopped cluster(s) in $DIR"
}

[[ $# -eq 2 ]] || die "usage: $0 up|check|down DIR"
[[ $(id -u) -eq 0 ]] || die "run as root (clusters run as postgres via runuser)"
DIR=$(readlink -m "$2")
case $1 in
up) cmd_up ;;
check) cmd_check || exit 1 ;;
down) cmd_down ;;
*) die "usage: $0 up|check|down DIR" ;;
esac
