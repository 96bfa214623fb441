-- A user's orders page by page, a coupon issued by its code, a coupon with
-- what is left of it.
\set SHOW_CONTEXT never

SELECT commerce.create_user('lister') AS lister \gset
SELECT commerce.charge_balance(:lister, 100000);
SELECT commerce.create_product('list item', 1000, 10) AS item \gset
SELECT order_id AS o1 FROM commerce.place_order(:lister, format('[{"product_id": %s, "quantity": 1}]', :item)::jsonb) \gset
SELECT order_id AS o2 FROM commerce.place_order(:lister, format('[{"product_id": %s, "quantity": 2}]', :item)::jsonb) \gset
SELECT order_id AS o3 FROM commerce.place_order(:lister, format('[{"product_id": %s, "quantity": 3}]', :item)::jsonb) \gset
SELECT commerce.cancel_order(:o2, :lister);

-- newest first, two at a time, then the rest after the last id seen
SELECT order_id = :o3 AS newest, status, total_amount, items->0->>'quantity' AS quantity
FROM commerce.user_orders(:lister, 2) ORDER BY order_id DESC;
SELECT order_id = :o1 AS oldest, status FROM commerce.user_orders(:lister, 2, :o2);
SELECT count(*) FROM commerce.user_orders(:lister, 2, :o1);
SELECT commerce.create_user('no orders') AS idle \gset
SELECT count(*) FROM commerce.user_orders(:idle);
SELECT * FROM commerce.user_orders(99999);
SELECT * FROM commerce.user_orders(:lister, 0);
SELECT * FROM commerce.user_orders(:lister, 101);

-- by code: the same rules as by id, and the coupon's id with the issued one
SELECT commerce.create_coupon('BY-CODE', 'fixed', 500, 2) AS by_code \gset
SELECT coupon_id = :by_code AS right_coupon, issued_coupon_id > 0 AS issued
FROM commerce.issue_coupon_by_code(:lister, 'BY-CODE');
SELECT * FROM commerce.issue_coupon_by_code(:lister, 'BY-CODE');
SELECT * FROM commerce.issue_coupon_by_code(:lister, 'NO-SUCH-CODE');
SELECT * FROM commerce.issue_coupon_by_code(:lister, NULL);

-- what is left of it
SELECT code, name, discount_type, discount_value, total_quantity, remaining, valid_until
FROM commerce.get_coupon(:by_code);
SELECT * FROM commerce.get_coupon(99999);

-- keyed_call: the first final answer of (user, key) is stored with its
-- effect and given back to every later request with the key
SELECT commerce.create_user('keyed') AS keyed \gset
SELECT status, body, replayed FROM commerce.keyed_call(:keyed, 'k-1', 'charge_balance', '{"amount": 700}');
SELECT status, body, replayed FROM commerce.keyed_call(:keyed, 'k-1', 'charge_balance', '{"amount": 700}');
SELECT commerce.get_balance(:keyed) AS charged_once;
SELECT * FROM commerce.keyed_call(:keyed, 'k-1', 'charge_balance', '{"amount": 701}');
SELECT * FROM commerce.keyed_call(:keyed, 'k-1', 'issue_coupon', '{"coupon_id": 1}');
-- a refusal is a final answer too, and is replayed as it was
SELECT status, body, replayed FROM commerce.keyed_call(:keyed, 'k-2', 'charge_balance', '{"amount": 0}');
SELECT status, body, replayed FROM commerce.keyed_call(:keyed, 'k-2', 'charge_balance', '{"amount": 0}');
SELECT status, body FROM commerce.keyed_call(99999, 'k-3', 'charge_balance', '{"amount": 5}');
-- the other operations
SELECT status, body FROM commerce.keyed_call(:keyed, 'k-4', 'issue_coupon_by_code', '{"code": "BY-CODE"}');
SELECT status, body, replayed FROM commerce.keyed_call(:keyed, 'k-4', 'issue_coupon_by_code', '{"code": "BY-CODE"}');
SELECT commerce.charge_balance(:keyed, 10000) AS charged_plain;
SELECT order_id AS keyed_order FROM commerce.place_order(:keyed, format('[{"product_id": %s, "quantity": 1}]', :item)::jsonb) \gset
SELECT status, body = format('{"orderId" : %s, "status" : "cancelled"}', :keyed_order) AS cancelled
FROM commerce.keyed_call(:keyed, 'k-5', 'cancel_order', format('{"order_id": %s}', :keyed_order)::jsonb);
SELECT status, replayed FROM commerce.keyed_call(:keyed, 'k-5', 'cancel_order', format('{"order_id": %s}', :keyed_order)::jsonb);
SELECT * FROM commerce.keyed_call(:keyed, 'k-6', 'drop_table', '{}');
-- a keyed order: stored with its key on the order too; a refusal is stored
-- and replayed, and the stock it did not take stays
SELECT status, body::jsonb - 'orderId' AS body, replayed
FROM commerce.keyed_call(:keyed, 'k-7', 'place_order', format('{"items": [{"product_id": %s, "quantity": 1}]}', :item)::jsonb);
SELECT status, replayed, body::jsonb->>'orderId' = (SELECT id::text FROM commerce.orders WHERE idempotency_key = 'k-7') AS same_order
FROM commerce.keyed_call(:keyed, 'k-7', 'place_order', format('{"items": [{"product_id": %s, "quantity": 1}]}', :item)::jsonb);
SELECT status, body FROM commerce.keyed_call(:keyed, 'k-7', 'place_order', format('{"items": [{"product_id": %s, "quantity": 2}]}', :item)::jsonb);
SELECT stock AS stock_before_refusal FROM commerce.get_product(:item);
SELECT status, body, replayed FROM commerce.keyed_call(:keyed, 'k-8', 'place_order', format('{"items": [{"product_id": %s, "quantity": 50}]}', :item)::jsonb);
SELECT commerce.restock(:item, 100);
SELECT status, body, replayed FROM commerce.keyed_call(:keyed, 'k-8', 'place_order', format('{"items": [{"product_id": %s, "quantity": 50}]}', :item)::jsonb);
SELECT stock AS stock_after_replayed_refusal FROM commerce.get_product(:item);
-- an order placed under a key before 0.6.0 (no stored answer) is answered, not placed again
SELECT order_id AS old_keyed_order FROM commerce.place_order(:keyed, format('[{"product_id": %s, "quantity": 1}]', :item)::jsonb, NULL, 'k-9') \gset
SELECT status, body::jsonb->>'orderId' = :'old_keyed_order' AS same_order, replayed
FROM commerce.keyed_call(:keyed, 'k-9', 'place_order', format('{"items": [{"product_id": %s, "quantity": 1}]}', :item)::jsonb);
-- operators' writes, with and without a key; a customer operation is not one of them
SELECT status, body::jsonb - 'id' AS body, replayed FROM commerce.operator_call(1, NULL, 'create_user', '{"name": "by operator"}');
SELECT status, body::jsonb - 'id' AS body, replayed
FROM commerce.operator_call(1, 'op-1', 'create_product', '{"name": "keyed product", "price": 700, "stock": 3, "category": "misc"}');
SELECT status, replayed FROM commerce.operator_call(1, 'op-1', 'create_product', '{"name": "keyed product", "price": 700, "stock": 3, "category": "misc"}');
SELECT count(*) AS keyed_products FROM commerce.products WHERE name = 'keyed product';
SELECT status, body, replayed FROM commerce.operator_call(1, 'op-2', 'restock', format('{"product_id": %s, "quantity": 5}', :item)::jsonb);
SELECT status, body, replayed FROM commerce.operator_call(1, 'op-2', 'restock', format('{"product_id": %s, "quantity": 5}', :item)::jsonb);
SELECT status, body::jsonb - 'id' AS body, replayed
FROM commerce.operator_call(1, 'op-3', 'create_coupon', '{"code": "OP-KEYED", "discount_type": "percent", "discount_value": 10, "total_quantity": 5, "valid_from": "2026-01-01T00:00:00+00:00", "max_discount": 2000}');
SELECT status, body FROM commerce.operator_call(1, NULL, 'create_coupon', '{"code": "OP-KEYED", "discount_type": "percent", "discount_value": 10, "total_quantity": 5}');
SELECT status, body FROM commerce.operator_call(1, NULL, 'restock', '{"product_id": 99999, "quantity": 5}');
SELECT * FROM commerce.operator_call(1, NULL, 'charge_balance', '{"amount": 5}');
SELECT * FROM commerce.keyed_call(:keyed, 'k-10', 'create_product', '{"name": "x", "price": 1, "stock": 1}');
SELECT * FROM commerce.keyed_call(:keyed, '', 'charge_balance', '{"amount": 1}');
SELECT count(*) AS answers_kept FROM commerce.idempotency_keys WHERE user_id = :keyed;
-- an answer older than pg_commerce.idempotency_ttl is forgotten: the key runs again
SHOW pg_commerce.idempotency_ttl;
UPDATE commerce.idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'k-1';
SELECT status, body, replayed FROM commerce.keyed_call(:keyed, 'k-1', 'charge_balance', '{"amount": 700}');
SELECT commerce.get_balance(:keyed) AS charged_again;
UPDATE commerce.idempotency_keys SET created_at = now() - interval '25 hours' WHERE key IN ('k-2', 'k-4');
SELECT commerce.purge_idempotency_keys() AS purged;
SET pg_commerce.idempotency_ttl = '1s';
SELECT pg_sleep(1.1);
SELECT commerce.purge_idempotency_keys() AS purged_at_one_second;
RESET pg_commerce.idempotency_ttl;

-- an order whose total would pass bigint's range cannot be paid by any wallet
SELECT commerce.create_product('priceless', 9000000000000000000, 5) AS priceless \gset
SELECT * FROM commerce.place_order(:keyed, format('[{"product_id": %s, "quantity": 2}]', :priceless)::jsonb);
