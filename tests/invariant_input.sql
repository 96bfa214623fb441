-- tests/invariant_input.sql — what a test records for tests/invariants.sql:
-- the stock it started with, stock it moved outside orders, and the orders
-- its clients were told succeeded.  Run before seeding; safe to run again.
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS invariant_input;
CREATE TABLE IF NOT EXISTS invariant_input.initial_stock (
	product_id bigint PRIMARY KEY,
	quantity   bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS invariant_input.stock_moves (
	product_id bigint NOT NULL,
	quantity   bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS invariant_input.acked_orders (
	order_id    bigint NOT NULL,
	user_id     bigint NOT NULL,
	paid_amount bigint
);
RESET client_min_messages;

