-- Housekeeping: delivered events past pg_commerce.outbox_retention, expired
-- idempotency answers and sales statistics older than every window go, at
-- most pg_commerce.housekeeping_batch rows per table and call; undelivered
-- events never.  (A fresh extension of its own.)
\set SHOW_CONTEXT never

DROP EXTENSION pg_commerce CASCADE;
CREATE EXTENSION pg_commerce;
SHOW pg_commerce.outbox_retention;
SHOW pg_commerce.housekeeping_batch;
SELECT commerce.outbox_retention(), commerce.housekeeping_batch();

-- Nothing to do in an empty shop
SELECT * FROM commerce.housekeeping();

-- In one transaction, so that now() is one instant for every statement.
BEGIN;
-- the outbox: each kind of event twice
INSERT INTO commerce.outbox (event_type, aggregate_id, payload, created_at, claimed_until, acked_at)
SELECT 'order_placed', g, jsonb_build_object('case', c), now() - age, claimed, acked
FROM (VALUES
	('delivered 2 hours ago', interval '3 hours', now() - interval '2 hours', now() - interval '2 hours'),
	('delivered 61 minutes ago', interval '2 hours', now() - interval '61 minutes', now() - interval '61 minutes'),
	('delivered 59 minutes ago', interval '2 hours', now() - interval '59 minutes', now() - interval '59 minutes'),
	('delivered a second ago', interval '1 minute', now() - interval '1 second', now() - interval '1 second'),
	('undelivered for a week', interval '7 days', NULL, NULL),
	('claimed a week ago, lease run out', interval '7 days', now() - interval '7 days', NULL),
	('claimed now', interval '1 hour', now() + interval '30 seconds', NULL)
) AS v(c, age, claimed, acked), generate_series(1, 2) g;
-- idempotency answers: the TTL is 24 hours
INSERT INTO commerce.idempotency_keys (user_id, key, request, status, body, created_at)
SELECT 1, c || ' ' || g, 'charge_balance {}', 200, '{}', now() - age
FROM (VALUES ('25 hours old', interval '25 hours'), ('24 hours old', interval '24 hours'),
             ('23 hours old', interval '23 hours')) AS v(c, age), generate_series(1, 2) g;
-- statistics of two products: the 365-day window's first hour is kept, the
-- hours before go
SELECT commerce.create_product('product ' || g, 1000, 10) FROM generate_series(1, 2) g;
CREATE TEMP TABLE stats_before ON COMMIT DROP AS
SELECT date_trunc('hour', now()) - make_interval(hours => h) AS hour, p AS product_id, 0 AS slot, 1::bigint AS quantity
FROM unnest(ARRAY[0, 24 * 365, 24 * 365 + 1, 24 * 400]) h, generate_series(1, 2) p;
INSERT INTO commerce.sales_stats SELECT * FROM stats_before;
CREATE TEMP TABLE popular_before ON COMMIT DROP AS SELECT * FROM commerce.popular_products(365, 100);
SELECT * FROM popular_before;

SELECT * FROM commerce.housekeeping();
SELECT payload->>'case' AS kept, count(*) FROM commerce.outbox GROUP BY 1 ORDER BY 1;
SELECT split_part(key, ' ', 1) || ' hours old' AS kept, count(*) FROM commerce.idempotency_keys GROUP BY 1 ORDER BY 1;
SELECT (date_trunc('hour', now()) - hour) AS kept_hours_ago, count(*) FROM commerce.sales_stats GROUP BY 1 ORDER BY 1;
-- no answer of any window changed
SELECT (SELECT count(*) FROM (SELECT * FROM popular_before EXCEPT ALL
                              SELECT * FROM commerce.popular_products(365, 100)) d) AS changed_answers;
-- a second call finds nothing more
SELECT * FROM commerce.housekeeping();

-- the retention is a setting: 0 removes every delivered event, and still
-- no undelivered one
SET LOCAL pg_commerce.outbox_retention = '30min';
SELECT removed FROM commerce.housekeeping() WHERE table_name = 'outbox';
SET LOCAL pg_commerce.outbox_retention = 0;
SELECT removed FROM commerce.housekeeping() WHERE table_name = 'outbox';
SELECT payload->>'case' AS kept, count(*) FROM commerce.outbox GROUP BY 1 ORDER BY 1;
SELECT pending FROM commerce.outbox_lag();

-- bounded: at most pg_commerce.housekeeping_batch rows per table and call;
-- "more" says the batch was full, and the next call goes on
UPDATE commerce.outbox SET acked_at = now() - interval '1 day';
INSERT INTO commerce.idempotency_keys (user_id, key, request, status, body, created_at)
SELECT 2, 'old ' || g, 'charge_balance {}', 200, '{}', now() - interval '2 days' FROM generate_series(1, 5) g;
SET LOCAL pg_commerce.housekeeping_batch = 4;
SELECT * FROM commerce.housekeeping();
SELECT * FROM commerce.housekeeping();
SELECT * FROM commerce.housekeeping();
-- purge_idempotency_keys removes expired answers in the same bounded batches
INSERT INTO commerce.idempotency_keys (user_id, key, request, status, body, created_at)
SELECT 3, 'old ' || g, 'charge_balance {}', 200, '{}', now() - interval '2 days' FROM generate_series(1, 6) g;
SELECT commerce.purge_idempotency_keys() AS purged, commerce.purge_idempotency_keys() AS then_purged;
COMMIT;

-- run_housekeeping, what the scheduler calls: batch after batch, each
-- committed, until one is not full (here batches of 3, 3, 3 and 1)
INSERT INTO commerce.outbox (event_type, aggregate_id, payload, acked_at)
SELECT 'coupon_issued', g, '{}', now() - interval '1 day' FROM generate_series(1, 10) g;
SET pg_commerce.housekeeping_batch = 3;
CALL commerce.run_housekeeping();
RESET pg_commerce.housekeeping_batch;
SELECT count(*) AS delivered_left FROM commerce.outbox WHERE acked_at IS NOT NULL;
-- it commits, so not inside a transaction block
BEGIN;
CALL commerce.run_housekeeping();
ROLLBACK;

-- settings: in range, and a superuser's
SET pg_commerce.outbox_retention = -1;
SET pg_commerce.housekeeping_batch = 0;
CREATE ROLE regress_housekeeper LOGIN IN ROLE commerce_operator;
SET ROLE regress_housekeeper;
SET pg_commerce.outbox_retention = '1d';
SET pg_commerce.housekeeping_batch = 1000000;
SELECT count(*) AS tables FROM commerce.housekeeping();
RESET ROLE;
DROP ROLE regress_housekeeper;
