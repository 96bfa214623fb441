-- 쿠폰 발급 요청 폭주 — coupon-flood: :users distinct users and one coupon
-- limited to :quantity.  psql variables: users, quantity.
\set ON_ERROR_STOP 1
\ir common.sql
BEGIN;
INSERT INTO loadtest.fixture VALUES
	('USERS', :users),
	('FIRST_USER', loadtest.make_users('flood-user', :users, 0)),
	('QUANTITY', :quantity),
	('COUPON', commerce.create_coupon('FLOOD-10', 'percent', 10, :quantity, max_discount => 5000,
	                                  name => 'first come: 10% off'));
COMMIT;
