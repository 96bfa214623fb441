-- 인기 상품 재고 실시간 차감 — hot-stock: :users users with wallets and one
-- product with :stock units.  psql variables: users, stock.
\set ON_ERROR_STOP 1
\ir common.sql
BEGIN;
INSERT INTO loadtest.fixture VALUES
	('USERS', :users),
	('FIRST_USER', loadtest.make_users('hot-user', :users, 100000)),
	('STOCK', :stock),
	('PRODUCT', commerce.create_product('limited edition sneaker', 89000, :stock, 'hot'));
SELECT loadtest.remember_stock(ARRAY[(SELECT value FROM loadtest.fixture WHERE key = 'PRODUCT')]);
COMMIT;
