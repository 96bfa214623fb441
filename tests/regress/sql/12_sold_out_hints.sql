-- Sold-out hints (extension/sold_out_hint.c): set from a committed sum of
-- 0, cleared by everything that gives units back, never in the way of
-- another answer.  The test cluster preloads pg_commerce; without the
-- preload (tests/tap/004_sold_out_hint.pl) there are no hints at all.
-- (A fresh extension of its own: its tables' hints start empty.)
\set SHOW_CONTEXT never

SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_commerce CASCADE;
RESET client_min_messages;
CREATE EXTENSION pg_commerce;
SELECT commerce.sold_out_hints_active() AS active;
SELECT count(*) AS hints FROM commerce.sold_out_hints();

-- a coupon of 1: the second caller reads its committed 0 and sets the hint
SELECT commerce.create_coupon('HINT-1', 'fixed', 100, 1) AS hint_coupon \gset
SELECT commerce.create_user('hint first') AS first \gset
SELECT commerce.create_user('hint second') AS second \gset
SELECT commerce.create_user('hint third') AS third \gset
SELECT commerce.issue_coupon(:first, :hint_coupon) > 0 AS issued;
SELECT * FROM commerce.sold_out_hints() WHERE id = :hint_coupon;
SELECT commerce.issue_coupon(:second, :hint_coupon);
SELECT kind, id = :hint_coupon AS this_coupon FROM commerce.sold_out_hints();
-- hinted, and still: the holder hears "already issued", an unknown user
-- "not found", an unknown coupon "not found"
SELECT commerce.issue_coupon(:third, :hint_coupon);
SELECT commerce.issue_coupon(:first, :hint_coupon);
SELECT commerce.issue_coupon(99999, :hint_coupon);
SELECT commerce.issue_coupon(:third, 99999);

-- a DBA raising the quantity clears it in the same transaction, and the
-- unit is there at once
BEGIN;
UPDATE commerce.coupon_buckets SET quantity = quantity + 1 WHERE coupon_id = :hint_coupon AND bucket = 0;
SELECT count(*) AS hints_while_giving FROM commerce.sold_out_hints();
COMMIT;
SELECT commerce.issue_coupon(:third, :hint_coupon) > 0 AS issued_after_raise;
SELECT commerce.issue_coupon(:second, :hint_coupon);
SELECT count(*) AS hinted_again FROM commerce.sold_out_hints() WHERE kind = 'coupon';

-- stock: a restock and a cancelled order give units back
SELECT commerce.create_product('hint item', 100, 1, 'hints', 2) AS item \gset
SELECT commerce.charge_balance(:first, 10000);
SELECT commerce.decrement_stock(:item, 1);
SELECT commerce.decrement_stock(:item, 1);
SELECT kind, id = :item AS this_item FROM commerce.sold_out_hints() WHERE kind = 'stock';
SELECT * FROM commerce.place_order(:first, format('[{"product_id": %s, "quantity": 1}]', :item)::jsonb);
SELECT commerce.restock(:item, 1);
SELECT count(*) AS stock_hints_after_restock FROM commerce.sold_out_hints() WHERE kind = 'stock';
SELECT order_id AS hint_order FROM commerce.place_order(:first, format('[{"product_id": %s, "quantity": 1}]', :item)::jsonb) \gset
SELECT commerce.decrement_stock(:item, 1);
SELECT count(*) AS stock_hinted FROM commerce.sold_out_hints() WHERE kind = 'stock';
SELECT commerce.cancel_order(:hint_order, :first);
SELECT count(*) AS stock_hints_after_cancel FROM commerce.sold_out_hints() WHERE kind = 'stock';
SELECT commerce.decrement_stock(:item, 1);
SELECT commerce.decrement_stock(:item, 1);
SELECT count(*) AS stock_hinted FROM commerce.sold_out_hints() WHERE kind = 'stock';

-- an aborted take sets nothing: its own transaction had taken the units
BEGIN;
SELECT commerce.restock(:item, 1);
COMMIT;
BEGIN;
SELECT commerce.decrement_stock(:item, 1);
SELECT commerce.decrement_stock(:item, 1);
ROLLBACK;
SELECT count(*) AS stock_hints_after_own_abort FROM commerce.sold_out_hints() WHERE kind = 'stock';
SELECT commerce.decrement_stock(:item, 1) AS left_after_abort;

-- the trigger fires where triggers usually do not (logical replication)
SELECT commerce.decrement_stock(:item, 1);
SELECT count(*) AS stock_hinted FROM commerce.sold_out_hints() WHERE kind = 'stock';
SET session_replication_role = replica;
UPDATE commerce.stock_buckets SET quantity = 1 WHERE product_id = :item AND bucket = 1;
RESET session_replication_role;
SELECT count(*) AS stock_hints_after_replica_update FROM commerce.sold_out_hints() WHERE kind = 'stock';
SELECT commerce.decrement_stock(:item, 1) AS left_after_replica_update;

-- forgetting: after a change made with the trigger disabled
SELECT commerce.issue_coupon(:second, :hint_coupon);
ALTER TABLE commerce.coupon_buckets DISABLE TRIGGER coupon_buckets_give_back;
UPDATE commerce.coupon_buckets SET quantity = 1 WHERE coupon_id = :hint_coupon AND bucket = 0;
ALTER TABLE commerce.coupon_buckets ENABLE ALWAYS TRIGGER coupon_buckets_give_back;
-- (it counts the hints of tables that earlier files dropped too)
SELECT commerce.forget_sold_out_hints() >= 1 AS forgot;
SELECT count(*) AS hints_after_forget FROM commerce.sold_out_hints();
SELECT commerce.issue_coupon(:second, :hint_coupon) > 0 AS issued_after_forget;

-- who may look: operators, not the API or PUBLIC
CREATE ROLE regress_hint_operator LOGIN IN ROLE commerce_operator;
CREATE ROLE regress_hint_app LOGIN IN ROLE commerce_api;
SET ROLE regress_hint_operator;
SELECT commerce.sold_out_hints_active() AS active;
SELECT count(*) >= 0 AS listed FROM commerce.sold_out_hints();
SELECT commerce.forget_sold_out_hints();
RESET ROLE;
SET ROLE regress_hint_app;
SELECT commerce.sold_out_hints_active();
RESET ROLE;
DROP ROLE regress_hint_operator, regress_hint_app;
