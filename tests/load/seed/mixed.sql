-- mixed — sustained traffic: :users users with large wallets, :products
-- products in 10 categories, and a coupon nobody can exhaust.
-- psql variables: users, products.
\set ON_ERROR_STOP 1
\ir common.sql
BEGIN;
INSERT INTO loadtest.fixture VALUES
	('USERS', :users),
	('FIRST_USER', loadtest.make_users('mixed-user', :users, 100000000)),
	('COUPON', commerce.create_coupon('WELCOME', 'fixed', 1000, 1000000000, min_order_amount => 20000,
	                                  name => 'welcome: 1,000 won off')),
	('PRODUCTS', :products),
	('FIRST_PRODUCT', (SELECT min(commerce.create_product(
	                                  format('%s item %s', (ARRAY['shoes','shirt','bag','watch','cap',
	                                         'jacket','sock','belt','scarf','glove'])[g % 10 + 1], g),
	                                  1000 * (5 + g % 50), 10000000, 'category-' || g % 10))
	                   FROM generate_series(1, :products) g));
SELECT loadtest.remember_stock(array_agg(g))
FROM generate_series((SELECT value FROM loadtest.fixture WHERE key = 'FIRST_PRODUCT'),
                     (SELECT value FROM loadtest.fixture WHERE key = 'FIRST_PRODUCT') + :products - 1) g;
COMMIT;
