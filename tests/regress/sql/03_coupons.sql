-- Coupons: first come first served, one per user, never more than the quantity.
\set SHOW_CONTEXT never

SELECT commerce.create_coupon('FIX5000', 'fixed', 5000, 2) AS fix;
SELECT commerce.create_coupon('PCT10', 'percent', 10, 100, max_discount => 3000, min_order_amount => 20000) AS pct;
SELECT commerce.create_coupon('LATER', 'fixed', 1000, 10, valid_from => '2999-01-01 00:00+00') AS later;
SELECT commerce.create_coupon('OVER', 'fixed', 1000, 10, valid_from => '2020-01-01 00:00+00',
	valid_until => '2020-01-02 00:00+00') AS over;
SELECT commerce.create_coupon('NONE', 'fixed', 1000, 0) AS none;
SELECT commerce.create_coupon('SHORT', 'fixed', 1000, 10, valid_until => now() + interval '1 hour') AS short;

SELECT commerce.issue_coupon(1, 1);
SELECT commerce.issue_coupon(1, 1);
SELECT commerce.issue_coupon(2, 1);
SELECT commerce.create_user('carol');
SELECT commerce.issue_coupon(3, 1);
SELECT commerce.issue_coupon(1, 3);
SELECT commerce.issue_coupon(1, 4);
SELECT commerce.issue_coupon(1, 5);
SELECT commerce.issue_coupon(1, 99);
SELECT commerce.issue_coupon(99, 1);
SELECT commerce.issue_coupon(0, 1);
SELECT commerce.issue_coupon(1, 2);
SELECT commerce.issue_coupon(2, 2);
SELECT commerce.issue_coupon(1, 6);

SELECT issued_coupon_id, coupon_id, code, status, discount_type, discount_value, max_discount,
	min_order_amount, order_id
FROM commerce.user_coupons(1);
SELECT count(*) FROM commerce.user_coupons(3);
SELECT * FROM commerce.user_coupons(99);

-- issued never exceeds the quantity: remaining + issued = total
SELECT c.code, c.total_quantity,
	(SELECT sum(quantity) FROM commerce.coupon_buckets b WHERE b.coupon_id = c.id) AS remaining,
	(SELECT count(*) FROM commerce.issued_coupons i WHERE i.coupon_id = c.id) AS issued
FROM commerce.coupons c ORDER BY c.id;

-- bad coupon definitions
SELECT commerce.create_coupon('FIX5000', 'fixed', 1, 1);
SELECT commerce.create_coupon('X', 'bogus', 1, 1);
SELECT commerce.create_coupon('X', 'percent', 101, 1);
SELECT commerce.create_coupon('X', 'fixed', 0, 1);
SELECT commerce.create_coupon('X', 'fixed', 1, -1);
SELECT commerce.create_coupon('X', 'fixed', 1, 1, valid_until => now() - interval '1 day');
SELECT commerce.create_coupon('X', 'fixed', 1, 1, max_discount => 0);
