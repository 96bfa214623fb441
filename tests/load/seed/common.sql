-- tests/load/seed/common.sql — the side tables every fixture fills.
--
-- loadtest.fixture holds the ids and sizes a scenario's k6 script needs
-- (tests/load/run passes each row to k6 as -e KEY=VALUE); the initial stock
-- and the acknowledged orders go to schema invariant_input
-- (tests/invariant_input.sql), which tests/invariants.sql reads.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS loadtest CASCADE;
DROP SCHEMA IF EXISTS invariant_input CASCADE;
\ir ../../invariant_input.sql
SET client_min_messages = warning;
CREATE SCHEMA loadtest;
CREATE TABLE loadtest.fixture (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE loadtest.acked_coupons (issued_coupon_id bigint NOT NULL, user_id bigint NOT NULL, coupon_id bigint NOT NULL);
RESET client_min_messages;

-- n users named prefix-1 .. prefix-n, each charged `balance` won when it is
-- positive; returns the first id (ids of one call are consecutive: the
-- identity is only used by this session while seeding).
CREATE FUNCTION loadtest.make_users(prefix text, n integer, balance bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	first_id bigint;
	last_id bigint;
	uid bigint;
BEGIN
	FOR i IN 1..n LOOP
		uid := commerce.create_user(prefix || '-' || i);
		IF balance > 0 THEN
			PERFORM commerce.charge_balance(uid, balance);
		END IF;
		first_id := coalesce(first_id, uid);
		IF last_id IS NOT NULL AND uid <> last_id + 1 THEN
			RAISE EXCEPTION 'user ids of one fixture are not consecutive (% after %)', uid, last_id;
		END IF;
		last_id := uid;
	END LOOP;
	RETURN first_id;
END
$$;

-- Records the stock of the given products as their initial stock.
CREATE FUNCTION loadtest.remember_stock(ids bigint[])
RETURNS void LANGUAGE sql AS $$
	INSERT INTO invariant_input.initial_stock
	SELECT p.id, p.stock FROM unnest(ids) AS i(id), commerce.get_product(i.id) p
$$;
