#!/usr/bin/env bash
# tests/backup/run.sh — the shop survives a backup and a restore.
#
#   tests/backup/run.sh [logical|pitr|all]        (default: all)
#
# logical  Writes a shop through the SQL API in a private cluster, takes
#          pg_dump -Fc, pg_dump -Fp and pg_dumpall --globals-only, and
#          restores them: -Fc with pg_restore into a new database of the same
#          cluster, -Fp with psql into another one, and globals + -Fc
#          (pg_restore --create) into a second, fresh cluster.  Each copy must
#          have every table of schema commerce with the same row count
#          (never 0) and the same content (md5 over the rows in primary-key
#          order), the same identity sequence positions, and pass
#          tests/invariants.sql; the first copy and the second cluster then
#          take new users, coupons, orders and cancellations without an id
#          collision, and the application role keeps exactly its privileges.
# pitr     A cluster archiving its WAL (archive_command), a pg_basebackup
#          (-X none: the WAL comes from the archive only), orders, a named
#          restore point, the chosen order and more writes after it; the
#          base backup restored with restore_command and
#          recovery_target_name, promoted: exactly the state at the restore
#          point (all tables), invariants ok, and it takes new orders.
#
# Clusters: scripts/pg-cluster.sh under .run/backup-test/, ports
# BACKUP_TEST_PORT .. +3 (default 5470-5473); all stopped on exit, their data
# directories, the base backup and the WAL archive deleted when every check
# passed (dumps, fingerprints and server logs stay).  Needs the
# extension installed (make && make install).  Prints one line per check;
# the last line is "N passed, M failed"; exit status 1 when a check failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PGBIN
cluster=$top/scripts/pg-cluster.sh
mode=${1:-all}
case "$mode" in
logical|pitr|all) ;;
*) sed -n '2,29p' "$0"; exit 2 ;;
esac

# The suite talks to its own clusters only; test.sh's PG* must not leak in.
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGHOSTADDR

port0=${BACKUP_TEST_PORT:-5470}
rt=$top/.run/backup-test
SRC=$rt/logical-src     # port0:     the shop whose dumps are taken, and their restores
DST=$rt/logical-dst     # port0 + 1: a fresh cluster: globals + pg_restore --create
PRI=$rt/pitr-primary    # port0 + 2: archives its WAL; the base backup is taken from it
REC=$rt/pitr-restored   # port0 + 3: the base backup recovered to the restore point
ARCH=$rt/pitr-archive
BASE=$rt/pitr-base
files=$rt/files         # dumps, fingerprints, tool output

passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
step() { printf '\n--- %s\n' "$*"; }
# expect DESC WANT GOT
expect() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi; }
# expect_gt DESC GOT THAN: GOT is an integer above THAN
expect_gt() {
	if [[ "$2" =~ ^[0-9]+$ && "$3" =~ ^[0-9]+$ ]] && [ "$2" -gt "$3" ]; then pass "$1 ($2 > $3)"
	else fail "$1: expected an integer above [$3], got [$2]"; fi
}

now_ns() { date +%s%N; }
# secs_since T0: seconds since now_ns value T0, one decimal
secs_since() { local ms=$((($(now_ns) - $1) / 1000000)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# q DIR DB [psql args]: psql as postgres on the cluster in DIR, unaligned,
# tuples only, quiet, stopping at the first error
q() {
	local dir=$1 db=$2; shift 2
	"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$(cat "$dir/port")" -U postgres -d "$db" "$@"
}
# conn DIR: the connection options of the cluster in DIR, for the other tools
conn() { echo "-h $1/sock -p $(cat "$1/port") -U postgres"; }

start_fresh() { # DIR PORT
	if "$cluster" fresh "$1" "$2" >/dev/null 2>>"$files/clusters.log"; then
		echo "cluster $(basename "$1") on port $2"
	else
		fail "start a fresh cluster in $1 on port $2 (see $files/clusters.log)"
		return 1
	fi
}

stop_all() {
	local d
	for d in "$SRC" "$DST" "$PRI" "$REC"; do
		[ -f "$d/data/postmaster.pid" ] && "$cluster" stop "$d" 2>/dev/null
	done
	return 0
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# invariants LABEL DIR DB: tests/invariants.sql, every row ok
invariants() {
	local out rows bad
	if ! out=$(q "$2" "$3" -F '|' -f "$top/tests/invariants.sql" 2>&1); then
		fail "$1: tests/invariants.sql did not run: $out"
		return
	fi
	rows=$(grep -c '|' <<<"$out")
	bad=$(awk -F'|' '$2 != "t"' <<<"$out")
	if [ "$rows" -ge 15 ] && [ -z "$bad" ]; then
		pass "$1: tests/invariants.sql, all $rows invariants ok"
	else
		fail "$1: tests/invariants.sql ($rows rows): ${bad:-too few rows}"
	fi
}

# fingerprint DIR DB: one line per table of schema commerce:
# name|rows|md5 of its rows as text in primary-key order
fingerprint() {
	q "$1" "$2" <<'SQL'
SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(t::text, E''\n'' ORDER BY %s), '''')) FROM commerce.%I t',
              c.relname,
              coalesce((SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY k.n)
                        FROM pg_index i
                        CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
                        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                        WHERE i.indrelid = c.oid AND i.indisprimary), 't::text'),
              c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'commerce' AND c.relkind = 'r'
ORDER BY c.relname
\gexec
SQL
}

# sequences DIR DB: name|last value of each sequence of schema commerce
sequences() {
	q "$1" "$2" -c "SELECT sequencename || '|' || coalesce(last_value::text, 'never used')
	                FROM pg_sequences WHERE schemaname = 'commerce' ORDER BY 1"
}

# same_content LABEL WANT_FILE GOT_FILE WHAT: two fingerprint files agree
same_content() {
	local n
	n=$(wc -l <"$2")
	if [ "$n" -gt 0 ] && cmp -s "$2" "$3"; then
		pass "$1: $4 identical ($n of them)"
	else
		fail "$1: $4 differ (want < > got):"
		diff "$2" "$3" | sed 's/^/        /'
	fi
}

# tool_ok LABEL RC ERRFILE [ALLOWED]: a dump or restore tool exited 0 and
# wrote nothing to stderr but lines matching the regex ALLOWED
tool_ok() {
	local other
	other=$(grep -Ev "${4:-^\$}" "$3")
	if [ "$2" -eq 0 ] && [ -z "$other" ]; then
		if [ -s "$3" ]; then pass "$1: exit status 0, stderr: $(tr '\n' ' ' <"$3")"
		else pass "$1: exit status 0, no output on stderr"; fi
	else
		fail "$1: exit status $2, stderr:"
		sed 's/^/        /' "$3"
	fi
}

# ---------------------------------------------------------------- the data

# order_sql USER ITEMS_JSON COUPON|NULL KEY|NULL: place an order and record
# it as acknowledged for tests/invariants.sql
order_sql() {
	local key=NULL
	[ "$4" != NULL ] && key="'$4'"
	echo "INSERT INTO invariant_input.acked_orders (order_id, user_id, paid_amount)" \
	     "SELECT order_id, $1, paid_amount FROM commerce.place_order($1, '$2', coupon_id => $3, idempotency_key => $key);"
}
item() { printf '{"product_id": %d, "quantity": %d}' "$1" "$2"; }

# gen_shop USERS PRODUCTS: users with three charges each (one keyed), products with 1, 4,
# the default 8 and 32 buckets (stock recorded in invariant_input), coupons
gen_shop() {
	local users=$1 products=$2 i price buckets
	echo "SELECT count(commerce.create_user('user-' || g)) FROM generate_series(1, $users) g;"
	echo "SELECT count(commerce.charge_balance(g, 250000 + g)) FROM generate_series(1, $users) g;"
	echo "SELECT count(commerce.charge_balance(g, 150000)) FROM generate_series(1, $users) g;"
	# a third top-up with an Idempotency-Key, as commerce-http sends charges: stored answers
	echo "SELECT count(*) FROM generate_series(1, $users) g," \
	     "commerce.keyed_call(g, 'topup-' || g, 'charge_balance', jsonb_build_object('amount', 1000));"
	for i in $(seq 1 "$products"); do
		price=$((i * 1700 % 15000 + 3000))
		[ "$i" -eq 1 ] && price=30000
		case $((i % 4)) in 0) buckets=1 ;; 1) buckets=4 ;; 2) buckets=NULL ;; 3) buckets=32 ;; esac
		echo "INSERT INTO invariant_input.initial_stock" \
		     "SELECT commerce.create_product('product-$i', $price, 1000, 'cat-$((i % 3))', buckets => $buckets), 1000;"
	done
	cat <<'SQL'
SELECT commerce.create_coupon('FIX1000', 'fixed', 1000, 200);
SELECT commerce.create_coupon('PCT10', 'percent', 10, 100, min_order_amount => 20000, max_discount => 3000, name => 'ten percent');
SELECT commerce.create_coupon('PCT50', 'percent', 50, 60, max_discount => 5000, buckets => 4);
SELECT commerce.create_coupon('LATE', 'fixed', 500, 10, valid_until => now() + interval '30 days');
SELECT commerce.create_coupon('UNUSED', 'fixed', 100, 5);
SQL
}

# gen_issue COUPON FROM TO: issue the coupon to users FROM..TO
gen_issue() {
	local u
	for u in $(seq "$2" "$3"); do echo "SELECT commerce.issue_coupon($u, $1);"; done
}

# gen_orders FROM TO USERS PRODUCTS PREFIX: orders without coupon; every
# fourth has two items, every third an idempotency key PREFIX-g
gen_orders() {
	local g u p items key
	for g in $(seq "$1" "$2"); do
		u=$((g * 7 % $3 + 1)) p=$((g % $4 + 1))
		items="[$(item "$p" $((g % 3 + 1)))"
		[ $((g % 4)) -eq 0 ] && items+=", $(item $(((g + 2) % $4 + 1)) 1)"
		items+="]"
		key=NULL
		[ $((g % 3)) -eq 0 ] && key="$5-$g"
		order_sql "$u" "$items" NULL "$key"
	done
}

# gen_coupon_orders COUPON FROM TO PRODUCTS PREFIX: user u (FROM..TO, who
# holds the coupon) orders with it; product 1 (30000) is in every order so
# that PCT10's minimum of 20000 is met; even users give a key
gen_coupon_orders() {
	local u items key
	for u in $(seq "$2" "$3"); do
		items="[$(item 1 1), $(item $((u % ($4 - 1) + 2)) $((u % 2 + 1)))]"
		key=NULL
		[ $((u % 2)) -eq 0 ] && key="$5-$u"
		order_sql "$u" "$items" "$1" "$key"
	done
}

# cancels of every order whose id is a multiple of N (among those paid)
gen_cancels() {
	echo "SELECT format('SELECT commerce.cancel_order(%s, %s)', id, user_id) FROM commerce.orders" \
	     "WHERE status = 'paid' AND id % $1 = 0 ORDER BY id"
	echo '\gexec'
}

# stock moved outside orders, recorded for tests/invariants.sql
gen_restock() {
	echo "SELECT commerce.restock($1, $2); INSERT INTO invariant_input.stock_moves VALUES ($1, $2);"
}
gen_decrement() {
	echo "SELECT commerce.decrement_stock($1, $2); INSERT INTO invariant_input.stock_moves VALUES ($1, -$2);"
}

# =============================================================== logical

case_logical() {
	local t_case t rc db_fc=shop_fc db_plain=shop_plain
	t_case=$(now_ns)
	step "logical: a shop written through the SQL API"
	start_fresh "$SRC" "$port0" || return
	q "$SRC" postgres -c "CREATE DATABASE shop" || { fail "create database shop"; return; }
	q "$SRC" shop -c "CREATE EXTENSION pg_commerce" -c "CREATE ROLE shop_app LOGIN IN ROLE commerce_api" \
		-f "$top/tests/invariant_input.sql" || { fail "create the extension"; return; }

	{
		gen_shop 300 12
		gen_issue 1 1 150     # FIX1000
		gen_issue 2 1 80      # PCT10
		gen_issue 3 100 140   # PCT50
		gen_issue 4 1 10      # LATE
		gen_coupon_orders 1 1 120 12 fix
		gen_coupon_orders 2 1 60 12 pct
		gen_coupon_orders 3 100 130 12 half
		gen_orders 1 250 300 12 plain
		# the same requests again with the same keys: the first results, no new orders
		gen_coupon_orders 1 1 40 12 fix | grep "idempotency_key => '"
		gen_orders 1 60 300 12 plain | grep "idempotency_key => '"
		gen_cancels 9
		# a cancelled order gives its coupon back; use it again
		echo "SELECT format('INSERT INTO invariant_input.acked_orders (order_id, user_id, paid_amount)" \
		     "SELECT order_id, %s, paid_amount FROM commerce.place_order(%s, %L, coupon_id => %s, idempotency_key => %L)'," \
		     "o.user_id, o.user_id, '[$(item 2 1)]', ic.coupon_id, 'again-' || o.id)" \
		     "FROM commerce.orders o JOIN commerce.issued_coupons ic ON ic.id = o.issued_coupon_id" \
		     "WHERE o.status = 'cancelled' AND ic.status = 'issued' AND ic.coupon_id = 1 ORDER BY o.id"
		echo '\gexec'
		gen_restock 3 250
		gen_restock 7 40
		gen_decrement 5 7
		gen_decrement 10 3
		# the outbox relay: 100 events delivered, 20 claimed and not yet acked
		echo "SELECT commerce.ack_events(array_agg(event_id)) FROM commerce.claim_events(100);"
		echo "SELECT count(*) FROM commerce.claim_events(20);"
		# the popular-products ranking, as the scheduled refresh keeps it (dumped with its data)
		echo "SELECT count(*) FROM commerce.refresh_popular();"
	} >"$files/seed-logical.sql"
	t=$(now_ns)
	if q "$SRC" shop -f "$files/seed-logical.sql" >"$files/seed-logical.out" 2>&1; then
		pass "seed: $(grep -c "place_order" "$files/seed-logical.sql") place_order statements and the rest through the API ($(secs_since "$t") s)"
	else
		fail "seed: $(tail -n 3 "$files/seed-logical.out")"
		return
	fi
	q "$SRC" shop -F ' ' <<'SQL' | sed 's/^/      /'
SELECT 'users', count(*), 'with a balance', count(*) FILTER (WHERE balance > 0) FROM commerce.users;
SELECT 'products', count(*), 'with several buckets', count(*) FILTER (WHERE n > 1)
FROM (SELECT product_id, count(*) AS n FROM commerce.stock_buckets GROUP BY product_id) b;
SELECT 'orders', count(*), 'cancelled', count(*) FILTER (WHERE status = 'cancelled'),
       'with coupon', count(issued_coupon_id), 'with key', count(idempotency_key) FROM commerce.orders;
SELECT 'issued coupons', count(*), 'used', count(*) FILTER (WHERE status = 'used') FROM commerce.issued_coupons;
SELECT 'outbox events', count(*), 'acked', count(acked_at), 'claimed', count(claimed_until) FROM commerce.outbox;
SQL
	local variety
	variety=$(q "$SRC" shop -c "SELECT
		(SELECT count(*) FILTER (WHERE status = 'cancelled') > 0 AND count(*) FILTER (WHERE status = 'cancelled'
		        AND issued_coupon_id IS NOT NULL) > 0 AND count(issued_coupon_id) > 0
		        AND count(idempotency_key) > 0 AND count(*) > count(idempotency_key) FROM commerce.orders)
		AND (SELECT count(*) > 1 FROM (SELECT 1 FROM commerce.order_items GROUP BY order_id HAVING count(*) > 1) m)
		AND (SELECT count(DISTINCT n) >= 3 FROM (SELECT count(*) AS n FROM commerce.stock_buckets GROUP BY product_id) b)
		AND (SELECT count(*) FILTER (WHERE status = 'used') > 0 AND count(*) FILTER (WHERE status = 'issued') > 0
		     FROM commerce.issued_coupons)")
	expect "the shop has cancelled orders (with coupons too), orders with and without coupon and key, multi-item orders, several bucket counts, used and unused coupons" t "$variety"
	expect "the 40 retries with a used idempotency key returned the first order, created none" 40 \
		"$(q "$SRC" shop -c "SELECT count(*) - count(DISTINCT order_id) FROM invariant_input.acked_orders")"
	invariants "source" "$SRC" shop
	fingerprint "$SRC" shop >"$files/source.fp"
	sequences "$SRC" shop >"$files/source.seq"
	local empty
	empty=$(awk -F'|' '$2 == 0 {print $1}' "$files/source.fp" | tr '\n' ' ')
	expect "source: $(wc -l <"$files/source.fp") tables in schema commerce, none empty (so a dump without rows cannot pass)" "" "$empty"

	step "logical: dumps"
	t=$(now_ns)
	"$PGBIN/pg_dump" $(conn "$SRC") -Fc -f "$files/shop.dump" shop 2>"$files/pg_dump-Fc.err"
	rc=$?
	tool_ok "pg_dump -Fc ($(secs_since "$t") s, $(du -k "$files/shop.dump" | cut -f1) kB)" $rc "$files/pg_dump-Fc.err"
	t=$(now_ns)
	"$PGBIN/pg_dump" $(conn "$SRC") -Fp -f "$files/shop.sql" shop 2>"$files/pg_dump-Fp.err"
	rc=$?
	tool_ok "pg_dump -Fp ($(secs_since "$t") s, $(du -k "$files/shop.sql" | cut -f1) kB)" $rc "$files/pg_dump-Fp.err"
	"$PGBIN/pg_dumpall" $(conn "$SRC") --globals-only -f "$files/globals.sql" 2>"$files/pg_dumpall.err"
	rc=$?
	tool_ok "pg_dumpall --globals-only" $rc "$files/pg_dumpall.err"
	local listed
	listed=$("$PGBIN/pg_restore" -l "$files/shop.dump" | grep -c ' TABLE DATA commerce ')
	expect "the -Fc dump holds the data of every table of schema commerce" "$(wc -l <"$files/source.fp")" "$listed"

	step "logical: pg_restore of -Fc into a new database"
	q "$SRC" postgres -c "CREATE DATABASE $db_fc"
	t=$(now_ns)
	"$PGBIN/pg_restore" $(conn "$SRC") -d "$db_fc" "$files/shop.dump" 2>"$files/pg_restore-Fc.err"
	rc=$?
	tool_ok "pg_restore -d $db_fc ($(secs_since "$t") s)" $rc "$files/pg_restore-Fc.err"
	expect "$db_fc: extension pg_commerce created by pg_restore, same version" \
		"$(q "$SRC" shop -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_commerce'")" \
		"$(q "$SRC" "$db_fc" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_commerce'")"
	fingerprint "$SRC" "$db_fc" >"$files/$db_fc.fp"
	same_content "$db_fc" "$files/source.fp" "$files/$db_fc.fp" "tables: row counts and content"
	sequences "$SRC" "$db_fc" >"$files/$db_fc.seq"
	same_content "$db_fc" "$files/source.seq" "$files/$db_fc.seq" "identity sequences' last values"
	invariants "$db_fc" "$SRC" "$db_fc"
	keeps_working "$db_fc" "$SRC" "$db_fc" postgres

	step "logical: pg_dump -Fp | psql into a new database"
	q "$SRC" postgres -c "CREATE DATABASE $db_plain"
	t=$(now_ns)
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 $(conn "$SRC") -d "$db_plain" -f "$files/shop.sql" \
		>"$files/psql-Fp.out" 2>"$files/psql-Fp.err"
	rc=$?
	tool_ok "psql -f shop.sql ($(secs_since "$t") s)" $rc "$files/psql-Fp.err"
	fingerprint "$SRC" "$db_plain" >"$files/$db_plain.fp"
	same_content "$db_plain" "$files/source.fp" "$files/$db_plain.fp" "tables: row counts and content"
	sequences "$SRC" "$db_plain" >"$files/$db_plain.seq"
	same_content "$db_plain" "$files/source.seq" "$files/$db_plain.seq" "identity sequences' last values"
	invariants "$db_plain" "$SRC" "$db_plain"

	step "logical: globals and pg_restore --create into a fresh cluster"
	start_fresh "$DST" $((port0 + 1)) || return
	"$PGBIN/psql" -X -q $(conn "$DST") -d postgres -f "$files/globals.sql" >"$files/psql-globals.out" 2>"$files/psql-globals.err"
	# the dump re-creates every role, the one we connect as included
	local other
	other=$(grep -v 'role "postgres" already exists' "$files/psql-globals.err")
	expect "psql -f globals.sql: no error but 'role \"postgres\" already exists'" "" "$other"
	expect "roles: shop_app is a login member of commerce_api" t \
		"$(q "$DST" postgres -c "SELECT r.rolcanlogin AND pg_has_role('shop_app', 'commerce_api', 'MEMBER')
		                         FROM pg_roles r WHERE r.rolname = 'shop_app'")"
	t=$(now_ns)
	"$PGBIN/pg_restore" $(conn "$DST") --create -d postgres "$files/shop.dump" 2>"$files/pg_restore-create.err"
	rc=$?
	tool_ok "pg_restore --create ($(secs_since "$t") s)" $rc "$files/pg_restore-create.err"
	fingerprint "$DST" shop >"$files/dst.fp"
	same_content "second cluster" "$files/source.fp" "$files/dst.fp" "tables: row counts and content"
	sequences "$DST" shop >"$files/dst.seq"
	same_content "second cluster" "$files/source.seq" "$files/dst.seq" "identity sequences' last values"
	invariants "second cluster" "$DST" shop
	expect "second cluster: shop_app may call the API (get_balance of user 1 as in the source)" \
		"$(q "$SRC" shop -c "SELECT commerce.get_balance(1)")" \
		"$("$PGBIN/psql" -X -At -h "$DST/sock" -p $((port0 + 1)) -U shop_app -d shop -c "SELECT commerce.get_balance(1)" 2>&1)"
	local denied
	denied=$("$PGBIN/psql" -X -At -h "$DST/sock" -p $((port0 + 1)) -U shop_app -d shop \
		-c "SELECT count(*) FROM commerce.users" 2>&1)
	if [[ "$denied" == *"permission denied"* ]]; then
		pass "second cluster: shop_app may not read commerce.users directly"
	else
		fail "second cluster: shop_app reads commerce.users: $denied"
	fi
	keeps_working "second cluster" "$DST" shop shop_app

	"$cluster" stop "$DST" 2>/dev/null
	"$cluster" stop "$SRC" 2>/dev/null
	echo "logical: $(secs_since "$t_case") s"
}

# keeps_working LABEL DIR DB ROLE: the restored shop takes new writes, as ROLE
keeps_working() {
	local label=$1 dir=$2 db=$3 role=$4 max uid icid oid again want_again n_before n_after victim
	local -a m
	api() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$(cat "$dir/port")" -U "$role" -d "$db" "$@"; }
	max=$(q "$dir" "$db" -c "SELECT (SELECT max(id) FROM commerce.users), (SELECT max(id) FROM commerce.issued_coupons),
	                                (SELECT max(id) FROM commerce.orders)")
	IFS='|' read -r -a m <<<"$max"
	if [ "${#m[@]}" -ne 3 ] || [ -z "${m[2]}" ]; then
		fail "$label: the restored shop has no users, coupons or orders to build on: [$max]"
		return
	fi
	uid=$(api -c "SELECT commerce.create_user('after-restore')" 2>&1)
	expect_gt "$label: new user (as $role) gets a fresh id" "$uid" "${m[0]}"
	api -c "SELECT commerce.charge_balance($uid, 100000)" >/dev/null 2>&1
	icid=$(api -c "SELECT commerce.issue_coupon($uid, 1)" 2>&1)
	expect_gt "$label: new issued coupon gets a fresh id" "$icid" "${m[1]}"
	oid=$(api -c "SELECT order_id FROM commerce.place_order($uid, '[$(item 3 1)]', coupon_id => 1, idempotency_key => 'after-restore')" 2>&1)
	expect_gt "$label: new order with that coupon gets a fresh id (and so do its payment, ledger and outbox rows)" "$oid" "${m[2]}"
	q "$dir" "$db" -c "INSERT INTO invariant_input.acked_orders VALUES ($oid, $uid, NULL)" 2>/dev/null
	# an order of the source replayed with its idempotency key: the stored one
	want_again=$(q "$SRC" shop -c "SELECT id FROM commerce.orders WHERE user_id = 2 AND idempotency_key = 'fix-2'")
	n_before=$(q "$dir" "$db" -c "SELECT count(*) FROM commerce.orders")
	again=$(api -c "SELECT order_id FROM commerce.place_order(2, '[$(item 1 1), $(item 4 1)]', coupon_id => 1, idempotency_key => 'fix-2')" 2>&1)
	n_after=$(q "$dir" "$db" -c "SELECT count(*) FROM commerce.orders")
	expect "$label: a restored idempotency key answers with its restored order, no new order" \
		"$want_again $n_before" "$again $n_after"
	# cancel a restored paid order that used a coupon
	victim=$(q "$dir" "$db" -c "SELECT id || '|' || user_id || '|' || issued_coupon_id || '|' || paid_amount
	                            FROM commerce.orders WHERE status = 'paid' AND issued_coupon_id IS NOT NULL
	                            AND id <= ${m[2]} ORDER BY id LIMIT 1")
	IFS='|' read -r -a m <<<"$victim"
	if [ "${#m[@]}" -ne 4 ]; then
		fail "$label: no restored paid order with a coupon to cancel: [$victim]"
		return
	fi
	local bal_before result state
	bal_before=$(api -c "SELECT commerce.get_balance(${m[1]})")
	result=$(api -c "SELECT commerce.cancel_order(${m[0]}, ${m[1]})" 2>&1)
	state=$(q "$dir" "$db" -c "SELECT o.status || ' ' || ic.status || ' ' || (u.balance - $bal_before)
	                           FROM commerce.orders o JOIN commerce.issued_coupons ic ON ic.id = o.issued_coupon_id
	                           JOIN commerce.users u ON u.id = o.user_id WHERE o.id = ${m[0]}")
	# the order keeps naming its coupon; the coupon itself is 'issued' again
	expect "$label: cancel_order of restored order ${m[0]}: cancelled, coupon back, ${m[3]} refunded" \
		"cancelled cancelled issued ${m[3]}" "$result $state"
	invariants "$label, after the new writes" "$dir" "$db"
	unset -f api
}

# ================================================================== pitr

case_pitr() {
	local t_case t rc seg rp_lsn x victim arch_ok i n_base
	t_case=$(now_ns)
	step "pitr: a cluster archiving its WAL"
	start_fresh "$PRI" $((port0 + 2)) || return
	install -d -o postgres -g postgres -m 700 "$ARCH"
	q "$PRI" postgres -c "ALTER SYSTEM SET wal_level = replica" -c "ALTER SYSTEM SET archive_mode = on" \
		-c "ALTER SYSTEM SET archive_command = 'test ! -f $ARCH/%f && cp %p $ARCH/%f'" \
		|| { fail "configure archiving"; return; }
	"$cluster" stop "$PRI" 2>/dev/null
	"$cluster" start "$PRI" $((port0 + 2)) >/dev/null 2>>"$files/clusters.log" || { fail "restart the primary"; return; }
	expect "primary: wal_level, archive_mode, archive_command" \
		"replica|on|test ! -f $ARCH/%f && cp %p $ARCH/%f" \
		"$(q "$PRI" postgres -c "SELECT current_setting('wal_level') || '|' || current_setting('archive_mode') || '|' || current_setting('archive_command')")"
	q "$PRI" postgres -c "CREATE DATABASE shop" &&
	q "$PRI" shop -c "CREATE EXTENSION pg_commerce" -f "$top/tests/invariant_input.sql" &&
	{
		gen_shop 60 6
		gen_issue 1 1 40
		gen_issue 3 1 20
		gen_coupon_orders 1 1 20 6 fix
		gen_orders 1 30 60 6 plain
		gen_cancels 7
	} >"$files/seed-pitr-1.sql" &&
	q "$PRI" shop -f "$files/seed-pitr-1.sql" >"$files/seed-pitr-1.out" 2>&1 ||
		{ fail "seed the primary: $(tail -n 3 "$files/seed-pitr-1.out" 2>/dev/null)"; return; }
	pass "primary: shop seeded ($(q "$PRI" shop -c "SELECT count(*) FROM commerce.orders") orders)"

	step "pitr: pg_basebackup -X none"
	install -d -o postgres -g postgres -m 700 "$BASE"
	t=$(now_ns)
	# bounded: with -X none it waits for the archiver, which a broken
	# archive_command would keep failing forever
	as_pg timeout 30 "$PGBIN/pg_basebackup" $(conn "$PRI") -D "$BASE" -Fp -X none -c fast >"$files/pg_basebackup.out" 2>&1
	rc=$?
	tool_ok "pg_basebackup ($(secs_since "$t") s, $(du -sm "$BASE" | cut -f1) MB)" $rc "$files/pg_basebackup.out" \
		'^NOTICE:  all required WAL segments have been archived$'
	[ "$rc" -eq 0 ] || return
	n_base=$(q "$PRI" shop -c "SELECT count(*) FROM commerce.orders")
	"$PGBIN/pg_verifybackup" -n "$BASE" >"$files/pg_verifybackup.out" 2>&1
	rc=$?
	expect "pg_verifybackup -n: every file of the base backup matches its manifest" 0 $rc

	step "pitr: orders after the backup, a restore point, the chosen order, more writes"
	{
		gen_orders 31 50 60 6 later
		gen_coupon_orders 3 1 10 6 half
		gen_cancels 11
		gen_restock 2 100
		echo "SELECT commerce.charge_balance(7, 5000);"
	} >"$files/seed-pitr-2.sql"
	q "$PRI" shop -f "$files/seed-pitr-2.sql" >"$files/seed-pitr-2.out" 2>&1 ||
		{ fail "orders after the backup: $(tail -n 3 "$files/seed-pitr-2.out")"; return; }
	# the state the restore must reproduce; nothing writes between this and the restore point
	fingerprint "$PRI" shop >"$files/pitr-target.fp"
	q "$PRI" shop -c "SELECT concat_ws(' ', id, user_id, status, total_amount, discount_amount, paid_amount, issued_coupon_id)
	                  FROM commerce.orders ORDER BY id" >"$files/pitr-target.orders"
	# The target is a named restore point: a WAL record written at a moment
	# of our choosing, so "everything committed before it" is exact.  A time
	# (recovery_target_time) depends on clock resolution, an LSN or an xid
	# (recovery_target_lsn, recovery_target_xid) must be looked up first, and
	# with a name recovery_target_inclusive plays no part.  It is also what a
	# DBA creates before a risky operation.
	rp_lsn=$(q "$PRI" postgres -c "SELECT pg_create_restore_point('before-order-X')")
	x=$(q "$PRI" shop -c "SELECT order_id FROM commerce.place_order(30, '[$(item 1 1), $(item 2 2)]', coupon_id => 1, idempotency_key => 'order-X')")
	victim=$(q "$PRI" shop -c "SELECT min(id) FROM commerce.orders WHERE status = 'paid'")
	{
		gen_orders 51 60 60 6 after
		echo "SELECT commerce.cancel_order($victim, user_id) FROM commerce.orders WHERE id = $victim;"
		echo "SELECT commerce.charge_balance(8, 7000);"
		echo "SELECT commerce.issue_coupon(50, 1);"
		gen_restock 4 60
	} >"$files/seed-pitr-3.sql"
	q "$PRI" shop -f "$files/seed-pitr-3.sql" >"$files/seed-pitr-3.out" 2>&1 ||
		{ fail "writes after the restore point: $(tail -n 3 "$files/seed-pitr-3.out")"; return; }
	echo "restore point 'before-order-X' at $rp_lsn; order X = $x, then orders up to $(q "$PRI" shop -c "SELECT max(id) FROM commerce.orders"), a cancel of order $victim"
	fingerprint "$PRI" shop >"$files/pitr-final.fp"
	if cmp -s "$files/pitr-target.fp" "$files/pitr-final.fp"; then
		fail "the writes after the restore point changed nothing: the restore could not be told apart"
	else
		pass "the writes after the restore point changed $(diff "$files/pitr-target.fp" "$files/pitr-final.fp" | grep -c '^>') tables"
	fi
	seg=$(q "$PRI" postgres -c "SELECT pg_walfile_name(pg_switch_wal())")
	t=$(now_ns)
	arch_ok=f
	for i in $(seq 1 150); do
		arch_ok=$(q "$PRI" postgres -c "SELECT coalesce(last_archived_wal >= '$seg', false) FROM pg_stat_archiver")
		[ "$arch_ok" = t ] && break
		sleep 0.2
	done
	expect "pg_switch_wal: segment $seg archived ($(secs_since "$t") s)" t "$arch_ok"
	expect "pg_stat_archiver: no failed archive_command" 0 "$(q "$PRI" postgres -c "SELECT failed_count FROM pg_stat_archiver")"
	[ "$arch_ok" = t ] || return
	"$cluster" stop "$PRI" 2>/dev/null
	echo "primary stopped; archive: $(ls "$ARCH" | wc -l) files"

	step "pitr: restore the base backup to the restore point"
	t=$(now_ns)
	install -d -o postgres -g postgres -m 700 "$REC" "$REC/sock"
	cp -a "$BASE" "$REC/data"
	sed -i '/^unix_socket_directories/d' "$REC/data/postgresql.auto.conf"
	cat >>"$REC/data/postgresql.auto.conf" <<CONF
unix_socket_directories = '$REC/sock'
restore_command = 'cp $ARCH/%f %p'
recovery_target_name = 'before-order-X'
recovery_target_action = 'promote'
CONF
	# archive_mode and archive_command come along from the primary: once
	# promoted, the restored cluster archives its new timeline next to the old
	as_pg touch "$REC/data/recovery.signal"
	if ! "$cluster" start "$REC" $((port0 + 3)) >/dev/null 2>>"$files/clusters.log"; then
		fail "start the restored cluster: $(tail -n 5 "$REC/server.log")"
		return
	fi
	local promoted=f
	for i in $(seq 1 150); do
		promoted=$(q "$REC" postgres -c "SELECT NOT pg_is_in_recovery()" 2>/dev/null)
		[ "$promoted" = t ] && break
		sleep 0.2
	done
	expect "restored cluster: recovered and promoted ($(secs_since "$t") s from copy to read-write)" t "$promoted"
	if grep -q 'recovery stopping at restore point "before-order-X"' "$REC/server.log"; then
		pass "server log: recovery stopping at restore point \"before-order-X\""
	else
		fail "server log does not say it stopped at the restore point: $(grep -i recovery "$REC/server.log" | tail -n 3)"
	fi
	q "$REC" shop -c "SELECT concat_ws(' ', id, user_id, status, total_amount, discount_amount, paid_amount, issued_coupon_id)
	                  FROM commerce.orders ORDER BY id" >"$files/pitr-restored.orders"
	same_content "restored" "$files/pitr-target.orders" "$files/pitr-restored.orders" \
		"orders committed before the restore point ($n_base in the base backup, the rest from the archived WAL), with status and amounts"
	expect "restored: order X ($x) and every order after it absent" 0 \
		"$(q "$REC" shop -c "SELECT count(*) FROM commerce.orders WHERE id >= $x")"
	expect "restored: order $victim, cancelled after the restore point, still paid; user 8 without the later charge" \
		"paid|0" "$(q "$REC" shop -c "SELECT (SELECT status FROM commerce.orders WHERE id = $victim) || '|' ||
		                                   (SELECT count(*) FROM commerce.wallet_ledger WHERE user_id = 8 AND amount = 7000)")"
	fingerprint "$REC" shop >"$files/pitr-restored.fp"
	same_content "restored" "$files/pitr-target.fp" "$files/pitr-restored.fp" "tables at the restore point: row counts and content"
	invariants "restored" "$REC" shop
	local max_o new_o
	max_o=$(q "$REC" shop -c "SELECT max(id) FROM commerce.orders")
	new_o=$(q "$REC" shop -c "SELECT order_id FROM commerce.place_order(30, '[$(item 1 1)]', coupon_id => 1, idempotency_key => 'order-X')" 2>&1)
	expect_gt "restored: takes a new order (user 30's key 'order-X' is free again)" "$new_o" "$max_o"
	invariants "restored, after the new order" "$REC" shop
	arch_ok=f
	for i in $(seq 1 50); do
		[ -f "$ARCH/00000002.history" ] && { arch_ok=t; break; }
		sleep 0.2
	done
	expect "restored: new timeline 2, its history file archived" t "$arch_ok"
	"$cluster" stop "$REC" 2>/dev/null
	echo "pitr: $(secs_since "$t_case") s"
}

# ================================================================== main

t_all=$(now_ns)
stop_all
rm -rf "$rt"
mkdir -p "$files"
echo "tests/backup: $mode, clusters under $rt, ports $port0-$((port0 + 3))"
[ "$mode" = pitr ] || case_logical
[ "$mode" = logical ] || case_pitr
stop_all
# the clusters, the base backup and the archive take a few hundred MB: keep
# them for a look after a failure only (dumps, fingerprints and logs stay)
[ "$failed" -eq 0 ] && rm -rf "$SRC/data" "$DST/data" "$PRI/data" "$REC/data" "$BASE" "$ARCH"
echo
echo "total: $(secs_since "$t_all") s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
