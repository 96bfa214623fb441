-- Schema `commerce`: its tables, keys, and the constraints that carry the
-- invariants of docs/design.md even if a bug in a function tried to break them.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SET LOCAL search_path = public;
SELECT plan(97);

------------------------------------------------------------------------------
-- Tables and columns
------------------------------------------------------------------------------

SELECT has_schema('commerce');
-- pg_dump dumps an extension table's rows only when it is marked with
-- pg_extension_config_dump: every table and sequence must be, or a logical
-- backup silently loses it
SELECT set_eq($$
	SELECT c.oid FROM pg_class c
	WHERE c.relnamespace = 'commerce'::regnamespace AND c.relkind IN ('r', 'S')
$$, $$
	SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'pg_commerce'
$$, 'every table and sequence of schema commerce is dumped with its data');
SELECT tables_are('commerce', ARRAY[
	'users', 'wallet_ledger', 'products', 'stock_buckets', 'coupons', 'coupon_buckets',
	'orders', 'order_items', 'issued_coupons', 'payments', 'outbox', 'sales_stats', 'idempotency_keys',
	'popular_refresh', 'popular_ranking']);

SELECT columns_are('commerce', 'users', ARRAY['id', 'name', 'balance', 'created_at']);
SELECT columns_are('commerce', 'wallet_ledger',
	ARRAY['id', 'user_id', 'amount', 'balance_after', 'reason', 'order_id', 'created_at']);
SELECT columns_are('commerce', 'products', ARRAY['id', 'name', 'category', 'price', 'created_at']);
SELECT columns_are('commerce', 'stock_buckets', ARRAY['product_id', 'bucket', 'quantity']);
SELECT columns_are('commerce', 'coupons', ARRAY['id', 'code', 'name', 'discount_type',
	'discount_value', 'max_discount', 'min_order_amount', 'total_quantity', 'valid_from',
	'valid_until', 'created_at']);
SELECT columns_are('commerce', 'coupon_buckets', ARRAY['coupon_id', 'bucket', 'quantity']);
SELECT columns_are('commerce', 'orders', ARRAY['id', 'user_id', 'status', 'total_amount',
	'discount_amount', 'paid_amount', 'issued_coupon_id', 'idempotency_key',
	'request_fingerprint', 'created_at', 'cancelled_at']);
SELECT columns_are('commerce', 'order_items',
	ARRAY['order_id', 'product_id', 'quantity', 'unit_price', 'stock_bucket']);
SELECT columns_are('commerce', 'issued_coupons',
	ARRAY['id', 'coupon_id', 'user_id', 'status', 'order_id', 'issued_at', 'used_at']);
SELECT columns_are('commerce', 'payments',
	ARRAY['id', 'order_id', 'amount', 'method', 'status', 'created_at', 'refunded_at']);
SELECT columns_are('commerce', 'outbox', ARRAY['id', 'event_type', 'aggregate_id', 'payload',
	'created_at', 'claimed_until', 'acked_at']);
SELECT columns_are('commerce', 'sales_stats', ARRAY['hour', 'product_id', 'slot', 'quantity']);
SELECT columns_are('commerce', 'idempotency_keys',
	ARRAY['user_id', 'key', 'request', 'status', 'body', 'created_at']);
SELECT columns_are('commerce', 'popular_refresh', ARRAY['days', 'window_start', 'refreshed_at']);
SELECT columns_are('commerce', 'popular_ranking', ARRAY['days', 'rank', 'product_id', 'sold']);

-- docs/design.md, "Domain": money is bigint, ids are bigint, timestamps are timestamptz.
SELECT is_empty($$
	SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
	FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	WHERE c.relnamespace = 'commerce'::regnamespace AND c.relkind = 'r'
	  AND (a.attname IN ('id', 'balance', 'amount', 'balance_after', 'price', 'discount_value',
	                     'max_discount', 'min_order_amount', 'total_amount', 'discount_amount',
	                     'paid_amount', 'unit_price', 'aggregate_id')
	       OR a.attname LIKE '%\_id')
	  AND a.atttypid <> 'bigint'::regtype
$$, 'money and id columns are bigint');
SELECT is_empty($$
	SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
	FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	WHERE c.relnamespace = 'commerce'::regnamespace AND c.relkind = 'r'
	  AND a.atttypid IN ('real'::regtype, 'double precision'::regtype, 'numeric'::regtype,
	                     'money'::regtype, 'timestamp'::regtype)
$$, 'no floating point, numeric, money or timestamp-without-zone column');

------------------------------------------------------------------------------
-- Keys
------------------------------------------------------------------------------

SELECT col_is_pk('commerce', 'users', 'id', 'users: primary key id');
SELECT col_is_pk('commerce', 'wallet_ledger', 'id', 'wallet_ledger: primary key id');
SELECT col_is_pk('commerce', 'products', 'id', 'products: primary key id');
SELECT col_is_pk('commerce', 'stock_buckets', ARRAY['product_id', 'bucket'],
	'stock_buckets: primary key (product_id, bucket)');
SELECT col_is_pk('commerce', 'coupons', 'id', 'coupons: primary key id');
SELECT col_is_pk('commerce', 'coupon_buckets', ARRAY['coupon_id', 'bucket'],
	'coupon_buckets: primary key (coupon_id, bucket)');
SELECT col_is_pk('commerce', 'orders', 'id', 'orders: primary key id');
SELECT col_is_pk('commerce', 'order_items', ARRAY['order_id', 'product_id'],
	'order_items: primary key (order_id, product_id)');
SELECT col_is_pk('commerce', 'issued_coupons', 'id', 'issued_coupons: primary key id');
SELECT col_is_pk('commerce', 'payments', 'id', 'payments: primary key id');
SELECT col_is_pk('commerce', 'outbox', 'id', 'outbox: primary key id');
SELECT col_is_pk('commerce', 'sales_stats', ARRAY['hour', 'product_id', 'slot'],
	'sales_stats: primary key (hour, product_id, slot)');
SELECT col_is_pk('commerce', 'popular_refresh', 'days', 'popular_refresh: primary key days');
SELECT col_is_pk('commerce', 'popular_ranking', ARRAY['days', 'rank'],
	'popular_ranking: primary key (days, rank)');

SELECT fk_ok('commerce', 'wallet_ledger', 'user_id', 'commerce', 'users', 'id');
SELECT fk_ok('commerce', 'stock_buckets', 'product_id', 'commerce', 'products', 'id');
SELECT fk_ok('commerce', 'coupon_buckets', 'coupon_id', 'commerce', 'coupons', 'id');
SELECT fk_ok('commerce', 'orders', 'user_id', 'commerce', 'users', 'id');
SELECT fk_ok('commerce', 'orders', 'issued_coupon_id', 'commerce', 'issued_coupons', 'id');
SELECT fk_ok('commerce', 'order_items', 'order_id', 'commerce', 'orders', 'id');
SELECT fk_ok('commerce', 'issued_coupons', 'coupon_id', 'commerce', 'coupons', 'id');
SELECT fk_ok('commerce', 'issued_coupons', 'user_id', 'commerce', 'users', 'id');
-- the back-pointer has no foreign key: it would close a cycle with
-- orders.issued_coupon_id, and pg_restore could restore neither table
SELECT col_isnt_fk('commerce', 'issued_coupons', 'order_id', 'issued_coupons.order_id has no foreign key (no cycle)');
SELECT fk_ok('commerce', 'payments', 'order_id', 'commerce', 'orders', 'id');

SELECT col_is_unique('commerce', 'issued_coupons', ARRAY['coupon_id', 'user_id'],
	'issued_coupons: unique (coupon_id, user_id), one issued coupon per user per coupon');
SELECT col_is_unique('commerce', 'payments', ARRAY['order_id'],
	'payments: unique order_id, one payment per order');
SELECT col_is_unique('commerce', 'coupons', ARRAY['code'], 'coupons: unique code');

SELECT has_index('commerce', 'orders', 'orders_idempotency_idx', ARRAY['user_id', 'idempotency_key'],
	'orders: idempotency index on (user_id, idempotency_key)');
SELECT index_is_unique('commerce', 'orders', 'orders_idempotency_idx');
-- the outbox's partial indexes: claim_events' per-aggregate check reads the
-- undelivered events of one aggregate, housekeeping the delivered ones by age
SELECT has_index('commerce', 'outbox', 'outbox_aggregate_pending_idx', ARRAY['aggregate_id', 'id'],
	'outbox: undelivered events by (aggregate_id, id)');
SELECT is(
	(SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i
	 WHERE i.indexrelid = 'commerce.outbox_aggregate_pending_idx'::regclass),
	'(acked_at IS NULL)', 'outbox: the aggregate index covers exactly the undelivered events');
SELECT has_index('commerce', 'outbox', 'outbox_acked_idx', ARRAY['acked_at'],
	'outbox: delivered events by acked_at');
SELECT is(
	(SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i
	 WHERE i.indexrelid = 'commerce.outbox_acked_idx'::regclass),
	'(acked_at IS NOT NULL)', 'outbox: the acked index covers exactly the delivered events');
SELECT is(
	(SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i
	 WHERE i.indexrelid = 'commerce.orders_idempotency_idx'::regclass),
	'(idempotency_key IS NOT NULL)',
	'orders: the idempotency index covers exactly the orders that have a key');

------------------------------------------------------------------------------
-- Check constraints that carry invariants
------------------------------------------------------------------------------

SELECT col_has_check('commerce', 'users', 'balance', 'users.balance has a check');
SELECT col_has_check('commerce', 'stock_buckets', 'quantity', 'stock_buckets.quantity has a check');
SELECT col_has_check('commerce', 'coupon_buckets', 'quantity', 'coupon_buckets.quantity has a check');
SELECT col_has_check('commerce', 'wallet_ledger', 'balance_after', 'wallet_ledger.balance_after has a check');
SELECT col_has_check('commerce', 'orders', ARRAY['total_amount', 'discount_amount', 'paid_amount'],
	'orders: total - discount = paid is a check');
SELECT col_has_check('commerce', 'issued_coupons', ARRAY['status', 'order_id'],
	'issued_coupons: used <=> has an order is a check');

SELECT col_not_null('commerce', t, c, format('%s.%s is NOT NULL', t, c))
FROM (VALUES ('users', 'balance'), ('stock_buckets', 'quantity'), ('coupon_buckets', 'quantity'),
             ('orders', 'total_amount'), ('orders', 'discount_amount'), ('orders', 'paid_amount'),
             ('payments', 'amount'), ('wallet_ledger', 'amount'), ('products', 'price'),
             ('issued_coupons', 'coupon_id'), ('issued_coupons', 'user_id'),
             ('payments', 'order_id')) AS v(t, c);

-- The constraints hold against direct writes too (as the owner, bypassing the API).
SELECT commerce.create_user('schema-alice') AS alice \gset
SELECT commerce.create_user('schema-bob') AS bob \gset
SELECT commerce.charge_balance(:alice, 100000) AS charged \gset
SELECT commerce.create_product('schema-widget', 1000, 10, 'test', 4) AS widget \gset
SELECT commerce.create_coupon('SCHEMA-C1', 'fixed', 100, 10, buckets => 2) AS coupon \gset

SELECT throws_ok(format('UPDATE commerce.users SET balance = -1 WHERE id = %s', :alice),
	'23514', NULL, 'users.balance cannot go negative');
SELECT throws_ok(format('UPDATE commerce.stock_buckets SET quantity = -1 WHERE product_id = %s', :widget),
	'23514', NULL, 'stock_buckets.quantity cannot go negative');
SELECT throws_ok(format('UPDATE commerce.coupon_buckets SET quantity = -1 WHERE coupon_id = %s', :coupon),
	'23514', NULL, 'coupon_buckets.quantity cannot go negative');
SELECT throws_ok(format($$INSERT INTO commerce.wallet_ledger (user_id, amount, balance_after, reason)
	VALUES (%s, -5, -5, 'order_payment')$$, :bob),
	'23514', NULL, 'wallet_ledger.balance_after cannot be negative');
SELECT throws_ok(format($$INSERT INTO commerce.wallet_ledger (user_id, amount, balance_after, reason)
	VALUES (%s, 0, 0, 'charge')$$, :bob),
	'23514', NULL, 'wallet_ledger.amount cannot be zero');
SELECT throws_ok(format($$INSERT INTO commerce.orders (user_id, status, total_amount, discount_amount,
	paid_amount, request_fingerprint) VALUES (%s, 'paid', 1000, 100, 1000, 'x')$$, :alice),
	'23514', NULL, 'orders: total - discount must equal paid');
SELECT throws_ok(format($$INSERT INTO commerce.orders (user_id, status, total_amount, discount_amount,
	paid_amount, request_fingerprint) VALUES (%s, 'paid', 100, 200, -100, 'x')$$, :alice),
	'23514', NULL, 'orders: paid cannot be negative');
SELECT throws_ok(format($$INSERT INTO commerce.orders (user_id, status, total_amount, discount_amount,
	paid_amount, request_fingerprint) VALUES (%s, 'cancelled', 0, 0, 0, 'x')$$, :alice),
	'23514', NULL, 'orders: a cancelled order has cancelled_at');
SELECT throws_ok(format($$UPDATE commerce.issued_coupons SET status = 'used'
	WHERE id = %s$$, commerce.issue_coupon(:alice, :coupon)),
	'23514', NULL, 'issued_coupons: used requires an order');
SELECT throws_ok(format($$INSERT INTO commerce.coupons (code, name, discount_type, discount_value,
	total_quantity, valid_from) VALUES ('SCHEMA-PCT', 'x', 'percent', 101, 1, now())$$),
	'23514', NULL, 'coupons: a percent discount is at most 100');
SELECT throws_ok($$INSERT INTO commerce.coupons (code, name, discount_type, discount_value,
	total_quantity, valid_from, valid_until) VALUES ('SCHEMA-WIN', 'x', 'fixed', 1, 1, now(), now())$$,
	'23514', NULL, 'coupons: valid_until is after valid_from');
SELECT throws_ok(format($$INSERT INTO commerce.order_items (order_id, product_id, quantity,
	unit_price, stock_bucket) VALUES (%s, %s, 0, 1000, 0)$$,
	(SELECT order_id FROM commerce.place_order(:alice, format('[{"product_id": %s, "quantity": 1}]', :widget)::jsonb)),
	:widget),
	'23514', NULL, 'order_items.quantity is positive');

-- Unique keys: the last guards.
SELECT throws_ok(format('INSERT INTO commerce.issued_coupons (coupon_id, user_id) VALUES (%s, %s)',
	:coupon, :alice),
	'23505', NULL, 'a second issued copy of one coupon for one user is rejected');
SELECT lives_ok(format('INSERT INTO commerce.issued_coupons (coupon_id, user_id) VALUES (%s, %s)',
	:coupon, :bob),
	'another user may hold the same coupon');
SELECT commerce.place_order(:alice, format('[{"product_id": %s, "quantity": 1}]', :widget)::jsonb,
	idempotency_key => 'schema-key-1') AS keyed \gset
SELECT throws_ok(format($$INSERT INTO commerce.payments (order_id, amount, status)
	SELECT id, paid_amount, 'paid' FROM commerce.orders WHERE user_id = %s AND idempotency_key = 'schema-key-1'$$, :alice),
	'23505', NULL, 'a second payment for one order is rejected');
SELECT throws_ok(format($$INSERT INTO commerce.orders (user_id, status, total_amount, discount_amount,
	paid_amount, idempotency_key, request_fingerprint) VALUES (%s, 'paid', 0, 0, 0, 'schema-key-1', 'x')$$, :alice),
	'23505', NULL, 'a second order of one user with one idempotency key is rejected');
SELECT lives_ok(format($$INSERT INTO commerce.orders (user_id, status, total_amount, discount_amount,
	paid_amount, idempotency_key, request_fingerprint) VALUES (%s, 'paid', 0, 0, 0, 'schema-key-1', 'x')$$, :bob),
	'another user may use the same idempotency key');
SELECT lives_ok(format($$INSERT INTO commerce.orders (user_id, status, total_amount, discount_amount,
	paid_amount, request_fingerprint) VALUES (%1$s, 'paid', 0, 0, 0, 'x'), (%1$s, 'paid', 0, 0, 0, 'x')$$, :alice),
	'orders without a key are not constrained by the idempotency index');
SELECT throws_ok($$INSERT INTO commerce.coupons (code, name, discount_type, discount_value,
	total_quantity, valid_from) VALUES ('SCHEMA-C1', 'x', 'fixed', 1, 1, now())$$,
	'23505', NULL, 'coupon codes are unique');

-- Buckets: a product's stock and a coupon's quantity are the sums of their buckets.
SELECT is((SELECT count(*)::int FROM commerce.stock_buckets WHERE product_id = :widget), 4,
	'create_product made the requested number of stock buckets');
SELECT is((SELECT sum(quantity)::int FROM commerce.stock_buckets WHERE product_id = :widget), 8,
	'stock buckets sum to the stock (10 created, 2 sold above)');
SELECT is((SELECT stock FROM commerce.get_product(:widget)), 8, 'get_product reports the bucket sum');
SELECT is((SELECT sum(quantity)::int FROM commerce.coupon_buckets WHERE coupon_id = :coupon), 9,
	'coupon buckets sum to the quantity not yet issued (10 created, 1 issued)');

-- The wallet: balance = sum of the ledger after a charge and two orders.
SELECT is(commerce.get_balance(:alice),
	(SELECT sum(amount) FROM commerce.wallet_ledger WHERE user_id = :alice)::bigint,
	'balance equals the sum of the ledger');
SELECT is(commerce.get_balance(:alice), 98000::bigint, 'two orders of 1000 were debited from 100000');

SELECT * FROM finish();
ROLLBACK;
