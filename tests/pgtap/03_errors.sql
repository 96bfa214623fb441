-- Every row of the error table is raised, with its own SQLSTATE, by a
-- realistic call; the table itself is the one of docs/errors.md.
--
-- PC503 UNAVAILABLE is answered by commerce-http (database unreachable, pool
-- or queue full); the extension never raises it.  It is checked here only to
-- be present in commerce.error_codes() and absent from every SQL function body.
\set ON_ERROR_STOP 1
\set QUIET 1
-- read relative to the top directory (tests/pgtap/run.sh cd's there); empty if absent
\set errors_md `if [ -f docs/errors.md ]; then cat docs/errors.md; fi`

BEGIN;
SET LOCAL search_path = public;
SELECT plan(74);

------------------------------------------------------------------------------
-- The table
------------------------------------------------------------------------------

SELECT results_eq(
	$$SELECT sqlstate, code, http_status FROM commerce.error_codes() ORDER BY sqlstate$$,
	$$VALUES ('PC400', 'INVALID_ARGUMENT', 400), ('PC401', 'UNAUTHENTICATED', 401),
	         ('PC402', 'INSUFFICIENT_BALANCE', 402), ('PC403', 'FORBIDDEN', 403),
	         ('PC404', 'NOT_FOUND', 404), ('PC409', 'OUT_OF_STOCK', 409),
	         ('PC410', 'COUPON_SOLD_OUT', 409), ('PC411', 'COUPON_ALREADY_ISSUED', 409),
	         ('PC415', 'UNSUPPORTED_MEDIA_TYPE', 415),
	         ('PC422', 'COUPON_NOT_USABLE', 422), ('PC423', 'COUPON_NOT_ACTIVE', 422),
	         ('PC424', 'IDEMPOTENCY_MISMATCH', 422), ('PC425', 'QUANTITY_LIMIT_EXCEEDED', 422),
	         ('PC426', 'BALANCE_LIMIT_EXCEEDED', 422), ('PC429', 'TOO_MANY_REQUESTS', 429),
	         ('PC500', 'READ_COMMITTED_REQUIRED', 500),
	         ('PC503', 'UNAVAILABLE', 503)$$,
	'error_codes() is the table of docs/errors.md: SQLSTATE, code, HTTP status');
SELECT is_empty($$SELECT sqlstate FROM commerce.error_codes() WHERE sqlstate !~ '^PC[0-9A-Z]{3}$'$$,
	'every SQLSTATE is of the extension''s class PC');
SELECT is_empty($$SELECT condition FROM commerce.error_codes() WHERE coalesce(condition, '') = ''$$,
	'every row says which condition it stands for');
SELECT results_eq($$SELECT code, http_status FROM commerce.error_codes() WHERE sqlstate = 'PC503'$$,
	$$VALUES ('UNAVAILABLE', 503)$$,
	'PC503 UNAVAILABLE is in the table (raised by commerce-http, never by the extension)');
SELECT is_empty($$SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'commerce'::regnamespace AND p.prolang <> 13 /* C */
	  AND (p.prosrc LIKE '%UNAVAILABLE%' OR p.prosrc LIKE '%PC503%')$$,
	'no SQL function of the extension raises UNAVAILABLE');

CREATE TEMP TABLE errors_md ON COMMIT DROP AS
	SELECT m[1] AS code, m[2]::integer AS http_status, m[3] AS sqlstate, m[4] AS condition
	FROM regexp_matches(:'errors_md', '^\| ([A-Z_]+) \| ([0-9]{3}) \| (PC[0-9A-Z]{3}) \| (.*) \|$', 'gn') m;
SELECT CASE WHEN :'errors_md' = '' THEN skip('docs/errors.md does not exist', 1)
	ELSE set_eq($$SELECT code, http_status, sqlstate, condition FROM commerce.error_codes()$$,
	            $$SELECT code, http_status, sqlstate, condition FROM errors_md$$,
	            'docs/errors.md has the same table as error_codes()') END;

------------------------------------------------------------------------------
-- Fixtures (rolled back at the end)
------------------------------------------------------------------------------

SELECT commerce.create_user('err-rich') AS rich \gset
SELECT commerce.create_user('err-poor') AS poor \gset
SELECT commerce.create_user('err-other') AS other \gset
SELECT commerce.charge_balance(:rich, 1000000) AS charged \gset
SELECT commerce.charge_balance(:other, 1000000) AS charged \gset
SELECT commerce.create_product('err-widget', 1000, 100, 'test', 2) AS widget \gset
SELECT commerce.create_product('err-scarce', 500, 1, 'test', 1) AS scarce \gset
SELECT commerce.create_product('err-scarce-2', 500, 1, 'test', 4) AS scarce2 \gset
SELECT commerce.create_coupon('ERR-FIXED', 'fixed', 300, 100) AS c_fixed \gset
SELECT commerce.create_coupon('ERR-MIN', 'fixed', 100, 10, min_order_amount => 50000) AS c_min \gset
SELECT commerce.create_coupon('ERR-ONE', 'fixed', 100, 1) AS c_one \gset
SELECT commerce.create_coupon('ERR-ZERO', 'fixed', 100, 0) AS c_zero \gset
SELECT commerce.create_coupon('ERR-FUTURE', 'fixed', 100, 10,
	valid_from => now() + interval '1 day') AS c_future \gset
SELECT commerce.create_coupon('ERR-PAST', 'fixed', 100, 10,
	valid_from => now() - interval '2 days', valid_until => now() - interval '1 day') AS c_past \gset
SELECT commerce.create_coupon('ERR-EXPIRING', 'percent', 10, 10,
	valid_from => now() - interval '1 day', valid_until => now() + interval '1 day') AS c_expiring \gset
SELECT format('[{"product_id": %s, "quantity": 1}]', :widget) AS one_widget \gset
SELECT format('[{"product_id": %s, "quantity": 2}]', :widget) AS two_widgets \gset
SELECT 999999999 AS missing \gset

------------------------------------------------------------------------------
-- PC400 INVALID_ARGUMENT
------------------------------------------------------------------------------

SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[]')$$, :rich),
	'PC400', 'items must not be empty', 'place_order: empty items');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '{"product_id": %s, "quantity": 1}')$$, :rich, :widget),
	'PC400', 'items must be a JSON array', 'place_order: items not an array');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": 0}]')$$, :rich, :widget),
	'PC400', 'items[0]: quantity must be between 1 and 10000', 'place_order: quantity 0');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": -2}]')$$, :rich, :widget),
	'PC400', 'items[0]: quantity must be between 1 and 10000', 'place_order: negative quantity');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": 1.5}]')$$, :rich, :widget),
	'PC400', 'items[0]: quantity must be an integer', 'place_order: non-integer quantity');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": "2"}]')$$, :rich, :widget),
	'PC400', 'items[0]: quantity must be a number', 'place_order: quantity as a string');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": 1, "color": "red"}]')$$, :rich, :widget),
	'PC400', 'items[0]: unknown key', 'place_order: unknown key in an item');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": 1}, {"quantity": 1}]')$$, :rich, :widget),
	'PC400', 'items[1]: product_id is required', 'place_order: item without product_id');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[7]')$$, :rich),
	'PC400', 'items[0]: must be an object', 'place_order: item not an object');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L, idempotency_key => '')$$, :rich, :'one_widget'),
	'PC400', 'idempotency_key must be 1 to 200 characters', 'place_order: empty idempotency key');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(0, %L)$$, :'one_widget'),
	'PC400', 'user_id must be a positive integer', 'place_order: user_id 0');
SELECT throws_ok(format($$SELECT commerce.decrement_stock(%s, 0)$$, :widget),
	'PC400', 'quantity must be a positive integer', 'decrement_stock: quantity 0');
SELECT throws_ok(format($$SELECT commerce.issue_coupon(-1, %s)$$, :c_fixed),
	'PC400', 'user_id must be a positive integer', 'issue_coupon: negative user id');
SELECT throws_ok(format($$SELECT commerce.charge_balance(%s, 0)$$, :rich),
	'PC400', 'amount must be a positive integer', 'charge_balance: amount 0');
SELECT throws_ok($$SELECT commerce.create_product('bad', -1, 1)$$,
	'PC400', 'price must be a non-negative integer', 'create_product: negative price');
SELECT throws_ok($$SELECT commerce.create_coupon('BAD', 'bogus', 1, 1)$$,
	'PC400', 'discount_type must be ''fixed'' or ''percent''', 'create_coupon: unknown discount type');
SELECT throws_ok($$SELECT commerce.create_coupon('BAD', 'percent', 101, 1)$$,
	'PC400', 'discount_value out of range', 'create_coupon: percent over 100');

------------------------------------------------------------------------------
-- PC404 NOT_FOUND
------------------------------------------------------------------------------

SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L)$$, :missing, :'one_widget'),
	'PC404', 'user not found', 'place_order: unknown user');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": 1}]')$$, :rich, :missing),
	'PC404', 'product not found', 'place_order: unknown product');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L, %s)$$, :rich, :'one_widget', :missing),
	'PC404', 'coupon not found', 'place_order: unknown coupon');
SELECT throws_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :missing, :c_fixed),
	'PC404', 'user not found', 'issue_coupon: unknown user');
SELECT throws_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :rich, :missing),
	'PC404', 'coupon not found', 'issue_coupon: unknown coupon');
SELECT throws_ok(format($$SELECT commerce.decrement_stock(%s, 1)$$, :missing),
	'PC404', 'product not found', 'decrement_stock: unknown product');
SELECT throws_ok(format($$SELECT commerce.cancel_order(%s, %s)$$, :missing, :rich),
	'PC404', 'order not found', 'cancel_order: unknown order');
SELECT throws_ok(format($$SELECT * FROM commerce.get_order(%s)$$, :missing),
	'PC404', 'order not found', 'get_order: unknown order');
SELECT throws_ok(format($$SELECT commerce.get_balance(%s)$$, :missing),
	'PC404', 'user not found', 'get_balance: unknown user');
SELECT throws_ok(format($$SELECT commerce.charge_balance(%s, 100)$$, :missing),
	'PC404', 'user not found', 'charge_balance: unknown user');
SELECT throws_ok(format($$SELECT * FROM commerce.get_product(%s)$$, :missing),
	'PC404', 'product not found', 'get_product: unknown product');
SELECT throws_ok(format($$SELECT commerce.restock(%s, 1)$$, :missing),
	'PC404', 'product not found', 'restock: unknown product');
SELECT throws_ok(format($$SELECT * FROM commerce.user_coupons(%s)$$, :missing),
	'PC404', 'user not found', 'user_coupons: unknown user');

-- someone else's order is not found for this user
SELECT order_id AS others_order FROM commerce.place_order(:other, :'one_widget') \gset
SELECT throws_ok(format($$SELECT commerce.cancel_order(%s, %s)$$, :others_order, :rich),
	'PC404', 'order not found', 'cancel_order: another user''s order');

------------------------------------------------------------------------------
-- PC409 OUT_OF_STOCK
------------------------------------------------------------------------------

SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": 2}]')$$, :rich, :scarce),
	'PC409', 'out of stock', 'place_order: more units than the stock');
SELECT throws_ok(format($$SELECT commerce.decrement_stock(%s, 2)$$, :scarce),
	'PC409', 'out of stock', 'decrement_stock: more units than the stock');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": 1}, {"product_id": %s, "quantity": 2}]')$$,
	:rich, :widget, :scarce),
	'PC409', 'out of stock', 'place_order: one line of several out of stock');
SELECT is(commerce.decrement_stock(:scarce, 1), 0, 'decrement_stock takes the last unit');
SELECT throws_ok(format($$SELECT commerce.decrement_stock(%s, 1)$$, :scarce),
	'PC409', 'out of stock', 'decrement_stock: sold out');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": 1}]')$$, :rich, :scarce),
	'PC409', 'out of stock', 'place_order: sold out');
SELECT is((SELECT paid_amount FROM commerce.place_order(:rich, format('[{"product_id": %s, "quantity": 1}]', :scarce2)::jsonb)),
	500::bigint, 'place_order buys the only unit of a product split over 4 buckets');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, '[{"product_id": %s, "quantity": 1}]')$$, :other, :scarce2),
	'PC409', 'out of stock', 'place_order: sold out, stock split over 4 buckets');

------------------------------------------------------------------------------
-- PC410 COUPON_SOLD_OUT and PC411 COUPON_ALREADY_ISSUED
------------------------------------------------------------------------------

SELECT lives_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :rich, :c_one),
	'issue_coupon: the only unit of a coupon');
SELECT throws_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :other, :c_one),
	'PC410', 'coupon sold out', 'issue_coupon: all units issued');
SELECT throws_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :rich, :c_zero),
	'PC410', 'coupon sold out', 'issue_coupon: a coupon of quantity 0');
SELECT throws_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :rich, :c_one),
	'PC411', 'coupon already issued to this user',
	'issue_coupon: the holder asking again after the sell-out hears "already issued", not "sold out"');
SELECT lives_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :rich, :c_fixed),
	'issue_coupon: first request');
SELECT throws_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :rich, :c_fixed),
	'PC411', 'coupon already issued to this user', 'issue_coupon: second request of the same user');

------------------------------------------------------------------------------
-- PC422 COUPON_NOT_USABLE
------------------------------------------------------------------------------

SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L, %s)$$, :poor, :'one_widget', :c_fixed),
	'PC422', 'coupon not usable', 'place_order: coupon not owned');
SELECT results_eq(
	format($$SELECT total_amount, discount_amount, paid_amount FROM commerce.place_order(%s, %L, %s)$$,
	       :rich, :'one_widget', :c_fixed),
	$$VALUES (1000::bigint, 300::bigint, 700::bigint)$$,
	'place_order with a fixed coupon: 1000 - 300 = 700');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L, %s)$$, :rich, :'one_widget', :c_fixed),
	'PC422', 'coupon not usable', 'place_order: coupon already used');
SELECT lives_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :rich, :c_min), 'issue the minimum-order coupon');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L, %s)$$, :rich, :'two_widgets', :c_min),
	'PC422', 'coupon not usable', 'place_order: order below the coupon''s minimum');
SELECT lives_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :rich, :c_expiring), 'issue the expiring coupon');
UPDATE commerce.coupons SET valid_until = now() WHERE id = :c_expiring;
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L, %s)$$, :rich, :'one_widget', :c_expiring),
	'PC422', 'coupon not usable', 'place_order: coupon expired');

------------------------------------------------------------------------------
-- PC423 COUPON_NOT_ACTIVE
------------------------------------------------------------------------------

SELECT throws_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :rich, :c_future),
	'PC423', 'coupon is not being issued now', 'issue_coupon: before valid_from');
SELECT throws_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :rich, :c_past),
	'PC423', 'coupon is not being issued now', 'issue_coupon: after valid_until');
SELECT throws_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :other, :c_expiring),
	'PC423', 'coupon is not being issued now', 'issue_coupon: at valid_until exactly');

------------------------------------------------------------------------------
-- PC402 INSUFFICIENT_BALANCE
------------------------------------------------------------------------------

SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L)$$, :poor, :'one_widget'),
	'PC402', 'insufficient balance', 'place_order: empty wallet');
SELECT commerce.charge_balance(:poor, 1999) AS charged \gset
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L)$$, :poor, :'two_widgets'),
	'PC402', 'insufficient balance', 'place_order: one won short');
SELECT lives_ok(format($$SELECT * FROM commerce.place_order(%s, %L)$$, :poor, :'one_widget'),
	'place_order: a balance that covers the order');
SELECT is(commerce.get_balance(:poor), 999::bigint, 'the failed orders debited nothing');

------------------------------------------------------------------------------
-- PC424 IDEMPOTENCY_MISMATCH
------------------------------------------------------------------------------

SELECT order_id AS keyed_order FROM commerce.place_order(:other, :'one_widget', idempotency_key => 'err-key-1') \gset
SELECT commerce.get_balance(:other) AS other_balance \gset
SELECT is((SELECT order_id FROM commerce.place_order(:other, :'one_widget', idempotency_key => 'err-key-1')),
	:keyed_order::bigint, 'place_order: the same key and request replays the first order');
SELECT is(commerce.get_balance(:other), :other_balance::bigint, 'the replay charged nothing');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L, idempotency_key => 'err-key-1')$$, :other, :'two_widgets'),
	'PC424', 'idempotency key reused with another request', 'place_order: the same key, other items');
SELECT lives_ok(format($$SELECT commerce.issue_coupon(%s, %s)$$, :other, :c_fixed), 'issue a coupon to the other user');
SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L, %s, 'err-key-1')$$, :other, :'one_widget', :c_fixed),
	'PC424', 'idempotency key reused with another request', 'place_order: the same key, now with a coupon');
SELECT isnt((SELECT order_id FROM commerce.place_order(:rich, :'one_widget', idempotency_key => 'err-key-1')),
	:keyed_order::bigint, 'place_order: another user''s key of the same text is a new order');

------------------------------------------------------------------------------
-- PC425 QUANTITY_LIMIT_EXCEEDED
------------------------------------------------------------------------------

SELECT throws_ok(format($$SELECT * FROM commerce.place_order(%s, %L)$$, :rich,
	format('[{"product_id": %s, "quantity": 6000}, {"product_id": %s, "quantity": 6000}]', :widget, :widget)),
	'PC425', format('quantity of product %s must be at most 10000 in one order', :widget),
	'place_order: two valid lines of one product over the limit together');

------------------------------------------------------------------------------
-- PC426 BALANCE_LIMIT_EXCEEDED
------------------------------------------------------------------------------

SELECT throws_ok(format($$SELECT commerce.charge_balance(%s, 9223372036854775807)$$, :rich),
	'PC426', 'charge would exceed the wallet ceiling', 'charge_balance: over pg_commerce.max_balance');
-- PC500 needs a transaction at another isolation level, which this file's
-- one transaction cannot switch to: tests/regress/sql/08_isolation_level.sql
-- raises it from every function that checks.

------------------------------------------------------------------------------
-- Coverage: every SQLSTATE of the table was exercised above
------------------------------------------------------------------------------

SELECT set_eq($$SELECT sqlstate FROM commerce.error_codes()$$,
	ARRAY['PC400', 'PC402', 'PC404', 'PC409', 'PC410', 'PC411', 'PC422', 'PC423', 'PC424', 'PC425',
	      'PC426', 'PC500',
	      -- answered by commerce-http alone (tests/http)
	      'PC401', 'PC403', 'PC415', 'PC429', 'PC503'],
	'the table has no row that this file does not raise (PC500 and commerce-http''s rows aside)');

SELECT * FROM finish();
ROLLBACK;
