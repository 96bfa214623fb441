-- Demo data for `make run`: a small shop made through the public SQL API
-- (commerce.*), so it is exactly what an application could have created.
-- Ids are predictable on a fresh cluster: users 1-5, products 1-8
-- (product 1 is the hot one, its stock split over 16 buckets), coupons 1-3.
\set ON_ERROR_STOP on

SELECT commerce.create_user(name) FROM unnest(ARRAY['alice', 'bob', 'carol', 'dave', 'erin']) AS name;
SELECT commerce.charge_balance(id, 500000) FROM generate_series(1, 5) AS id;

SELECT commerce.create_product('Limited sneakers', 129000, 100, 'shoes', 16);
SELECT commerce.create_product(name, price, stock, category)
FROM (VALUES
	('Running shoes', 89000, 500, 'shoes'),
	('Trail shoes', 99000, 300, 'shoes'),
	('Cotton T-shirt', 19000, 1000, 'apparel'),
	('Rain jacket', 79000, 200, 'apparel'),
	('Coffee beans 1kg', 32000, 800, 'food'),
	('Green tea', 12000, 600, 'food'),
	('Steel water bottle', 25000, 400, 'goods')
) AS p(name, price, stock, category);

SELECT commerce.create_coupon('WELCOME5000', 'fixed', 5000, 1000, name => 'Welcome 5,000 won off');
SELECT commerce.create_coupon('FLASH10', 'percent', 10, 100, max_discount => 20000,
	min_order_amount => 50000, name => 'Flash sale 10% (max 20,000)');
SELECT commerce.create_coupon('NEXTWEEK', 'fixed', 3000, 500, valid_from => now() + interval '7 days',
	name => 'Not yet open');
