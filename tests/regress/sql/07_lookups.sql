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
