-- 이벤트 시간대 집중 트래픽 — event-orders: :users users, each with a wallet
-- and an issued copy of the event coupon, and :products products whose
-- stock outlasts the event.  psql variables: users, products.
\set ON_ERROR_STOP 1
\ir common.sql
BEGIN;
INSERT INTO loadtest.fixture VALUES
	('USERS', :users),
	('FIRST_USER', loadtest.make_users('event-user', :users, 1000000)),
	('COUPON', commerce.create_coupon('EVENT-3000', 'fixed', 3000, :users,
	                                  name => 'event sale: 3,000 won off')),
	('PRODUCTS', :products),
	('FIRST_PRODUCT', (SELECT min(commerce.create_product('event product ' || g, 10000 + g * 1000,
	                                                      1000000, 'event'))
	                   FROM generate_series(1, :products) g));
SELECT count(commerce.issue_coupon(u, (SELECT value FROM loadtest.fixture WHERE key = 'COUPON')))
FROM generate_series((SELECT value FROM loadtest.fixture WHERE key = 'FIRST_USER'),
                     (SELECT value FROM loadtest.fixture WHERE key = 'FIRST_USER') + :users - 1) u \gset issued_
SELECT loadtest.remember_stock(array_agg(g))
FROM generate_series((SELECT value FROM loadtest.fixture WHERE key = 'FIRST_PRODUCT'),
                     (SELECT value FROM loadtest.fixture WHERE key = 'FIRST_PRODUCT') + :products - 1) g;
COMMIT;
