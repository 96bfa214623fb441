-- place_order: all or nothing across stock, coupon, wallet, order, items,
-- payment, ledger, outbox and statistics.
\set SHOW_CONTEXT never

-- alice (1) has 75000 and coupons FIX5000 (1) and PCT10 (2); bob (2) has 0.
-- products: 1 Keyboard 30000 (stock 0 now), 2 Mouse 10000 (stock 7),
-- 3 Tea 4000 (stock 0), 4 Hot item 1000 (stock 100)
SELECT commerce.restock(1, 5);

-- a plain order, lines merged and sorted
SELECT * FROM commerce.place_order(1, '[{"product_id": 4, "quantity": 1}, {"product_id": 2, "quantity": 1}, {"product_id": 4, "quantity": 2}]');
SELECT order_id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, items
FROM commerce.get_order(1);
SELECT commerce.get_balance(1);

-- percent coupon with a cap: 10% of 60000 = 6000, capped at 3000
SELECT * FROM commerce.place_order(1, '[{"product_id": 1, "quantity": 2}]', 2);
-- the same coupon again: used
SELECT * FROM commerce.place_order(1, '[{"product_id": 1, "quantity": 1}]', 2);
-- fixed coupon larger than the order is capped at the total
SELECT commerce.charge_balance(1, 100000);
SELECT * FROM commerce.place_order(1, '[{"product_id": 4, "quantity": 2}]', 1);

-- errors leave nothing behind
SELECT count(*) AS orders_before FROM commerce.orders \gset
SELECT * FROM commerce.place_order(2, '[{"product_id": 2, "quantity": 1}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 3, "quantity": 1}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 1}, {"product_id": 3, "quantity": 1}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 1}]', 99);
UPDATE commerce.coupons SET valid_from = '2020-01-01 00:00+00', valid_until = '2020-01-02 00:00+00'
WHERE code = 'SHORT';
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 1}]', 6);
SELECT * FROM commerce.place_order(3, '[{"product_id": 2, "quantity": 1}]', 1);
SELECT * FROM commerce.place_order(99, '[{"product_id": 2, "quantity": 1}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 999, "quantity": 1}]');
SELECT count(*) = :orders_before AS nothing_written FROM commerce.orders;
SELECT bucket, quantity FROM commerce.stock_buckets WHERE product_id = 2 ORDER BY bucket;

-- minimum order amount: PCT10 needs 20000
SELECT commerce.issue_coupon(3, 2);
SELECT commerce.charge_balance(3, 100000);
SELECT * FROM commerce.place_order(3, '[{"product_id": 4, "quantity": 1}]', 2);
SELECT * FROM commerce.place_order(3, '[{"product_id": 2, "quantity": 2}]', 2);

-- malformed items
SELECT * FROM commerce.place_order(1, '[]');
SELECT * FROM commerce.place_order(1, '{}');
SELECT * FROM commerce.place_order(1, '5');
SELECT * FROM commerce.place_order(1, '[5]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 2}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 0}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 1.5}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": "1"}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 10001}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 1, "price": 1}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": -2, "quantity": 1}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 99999999999999999999, "quantity": 1}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 6000}, {"product_id": 2, "quantity": 6000}]');
SELECT * FROM commerce.place_order(1, (SELECT jsonb_agg(jsonb_build_object('product_id', i, 'quantity', 1)) FROM generate_series(1, 101) i));
SELECT * FROM commerce.place_order(0, '[{"product_id": 2, "quantity": 1}]');
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 1}]', -1);
SELECT * FROM commerce.place_order(1, NULL);
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 1}]', NULL, '');

-- idempotency: the same key and request returns the first result, changes nothing
SELECT commerce.get_balance(3) AS before \gset
SELECT * FROM commerce.place_order(3, '[{"product_id": 2, "quantity": 1}]', NULL, 'req-1');
SELECT * FROM commerce.place_order(3, '[{"product_id": 2, "quantity": 1}]', NULL, 'req-1');
SELECT :before - commerce.get_balance(3) AS charged_once;
-- another request with that key is refused; another user may use the same key
SELECT * FROM commerce.place_order(3, '[{"product_id": 2, "quantity": 2}]', NULL, 'req-1');
SELECT commerce.charge_balance(2, 50000);
SELECT * FROM commerce.place_order(2, '[{"product_id": 2, "quantity": 1}]', NULL, 'req-1');
SELECT count(*) FROM commerce.orders WHERE idempotency_key = 'req-1';

-- cancel gives back stock, money and the coupon, once
SELECT commerce.get_balance(1) AS before \gset
SELECT (SELECT sum(quantity) FROM commerce.stock_buckets WHERE product_id = 1) AS stock_before \gset
SELECT commerce.cancel_order(2, 1);
SELECT commerce.get_balance(1) - :before AS refunded;
SELECT (SELECT sum(quantity) FROM commerce.stock_buckets WHERE product_id = 1) - :stock_before AS restocked;
SELECT status, order_id FROM commerce.issued_coupons WHERE id = 2;
SELECT commerce.cancel_order(2, 1);
SELECT commerce.get_balance(1) - :before AS refunded_still;
SELECT commerce.cancel_order(2, 2);
SELECT commerce.cancel_order(999, 1);
-- the returned coupon can be used again
SELECT * FROM commerce.place_order(1, '[{"product_id": 1, "quantity": 1}]', 2);
SELECT o.id, o.status, p.status AS payment, p.amount, o.paid_amount FROM commerce.orders o JOIN commerce.payments p ON p.order_id = o.id ORDER BY o.id;
SELECT order_id, status, items FROM commerce.get_order(2);
SELECT * FROM commerce.get_order(999);

-- statistics: net of cancellations
SELECT * FROM commerce.popular_products();
SELECT * FROM commerce.popular_products(1, 1);
SELECT * FROM commerce.popular_products(0);

-- the wallet ceiling counts what paid orders could refund, so a cancel can
-- always pay back even a wallet charged up to its ceiling
SELECT commerce.create_user('ceiling') AS ceiling_user \gset
SET pg_commerce.max_balance = '100000';
SELECT commerce.charge_balance(:ceiling_user, 100000);
SELECT order_id AS ceiling_order, paid_amount FROM commerce.place_order(:ceiling_user, '[{"product_id": 2, "quantity": 1}]') \gset
SELECT :paid_amount AS paid_amount;
SELECT commerce.charge_balance(:ceiling_user, 1);
SELECT commerce.cancel_order(:ceiling_order, :ceiling_user);
SELECT commerce.get_balance(:ceiling_user);
SELECT commerce.charge_balance(:ceiling_user, 1);
RESET pg_commerce.max_balance;
SELECT commerce.charge_balance(:ceiling_user, 1);

-- the wallet always equals its ledger
SELECT u.id, u.balance = coalesce((SELECT sum(amount) FROM commerce.wallet_ledger l WHERE l.user_id = u.id), 0) AS balanced
FROM commerce.users u ORDER BY u.id;
