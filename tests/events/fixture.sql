/*
 * The shop of tests/events, in schema `events` beside the extension.
 *
 * Users and wallets are written into commerce's tables directly (200,000
 * through the API would take longer than the test); products and the coupon
 * are made through the API; the load (events.step, from load.sql) calls only
 * the API, as a client would.
 */
\set ON_ERROR_STOP 1
CREATE SCHEMA events;

INSERT INTO commerce.users (name, balance)
	SELECT 'events-' || g, 1000000000 FROM generate_series(1, 200000) g;
INSERT INTO commerce.wallet_ledger (user_id, amount, balance_after, reason)
	SELECT id, balance, balance, 'charge' FROM commerce.users;

-- 50 products that do not run out, one coupon that does not either
SELECT commerce.create_product('events-' || g, 1000 + g, 100000000, 'events', NULL)
FROM generate_series(1, 50) g;
SELECT commerce.create_coupon('EVENTS', 'fixed', 100, 100000000);

-- each coupon issue goes to the next user, so that none is refused as a repeat
CREATE SEQUENCE events.coupon_user MAXVALUE 200000 CYCLE;

-- the orders placed and then rolled back: none of their events may reach Kafka
CREATE TABLE events.rolled_back (order_id bigint PRIMARY KEY);

/*
 * One step of the mixed load, chosen by r (1..100): 10 % a coupon issued
 * (through keyed_call with a key of its own, as commerce-http issues one,
 * so that idempotency keys accumulate as in the shop),
 * 15 % an order placed and cancelled (two events of one aggregate, in that
 * order), 5 % an order placed and rolled back, 70 % an order placed.  The
 * EXCEPTION block turns a failure into a result, so pgbench never aborts.
 */
CREATE FUNCTION events.step(u bigint, p bigint, r integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	placed bigint;
BEGIN
	IF r <= 10 THEN
		PERFORM commerce.keyed_call(nextval('events.coupon_user'), 'issue-' || gen_random_uuid(), 'issue_coupon',
			jsonb_build_object('coupon_id', (SELECT id FROM commerce.coupons WHERE code = 'EVENTS')));
		RETURN 'issued';
	END IF;
	SELECT o.order_id INTO placed FROM commerce.place_order(u,
		jsonb_build_array(jsonb_build_object('product_id', p, 'quantity', 1))) o;
	IF r <= 25 THEN
		PERFORM commerce.cancel_order(placed, u);
		RETURN 'cancelled';
	END IF;
	IF r <= 30 THEN
		RAISE EXCEPTION 'rolled back on purpose' USING ERRCODE = 'P0001';
	END IF;
	RETURN 'placed';
EXCEPTION WHEN OTHERS THEN
	-- a variable keeps its value when the block's writes are rolled back
	IF SQLSTATE = 'P0001' AND placed IS NOT NULL THEN
		INSERT INTO events.rolled_back VALUES (placed);
	END IF;
	RETURN SQLSTATE;
END
$$;
