/*
 * Schema `tap`: what the TAP tests need besides the extension.
 *
 *   invariant_input.*  (tests/invariant_input.sql, read by tests/invariants.sql)
 *                      each product's stock at creation (tap.product records
 *                      it), units added (restock, +) or taken outside orders
 *                      (decrement_stock, -) by the wrappers below, and every
 *                      order some caller was told succeeded
 *   tap.outcome        one row per API call made by a wrapper: the op, the
 *                      user and the SQLSTATE it ended with ('00000' = success)
 *   tap.participants   the n-th attempt of a flood belongs to this user
 *
 * The wrappers call the API exactly as a client would and record how the
 * call ended, in the same transaction when it succeeded; an EXCEPTION block
 * turns the failure into an outcome row, so pgbench counts every call as a
 * transaction and the test counts outcomes exactly.
 */
CREATE SCHEMA tap;
CREATE TABLE tap.outcome (op text NOT NULL, user_id bigint, sqlstate text NOT NULL);
CREATE TABLE tap.participants (n integer PRIMARY KEY, user_id bigint NOT NULL);
CREATE SEQUENCE tap.turn;

CREATE FUNCTION tap.product(name text, price bigint, stock integer, buckets integer)
RETURNS bigint LANGUAGE sql AS $$
	WITH p AS (SELECT commerce.create_product(name, price, stock, 'tap', buckets) AS id)
	INSERT INTO invariant_input.initial_stock SELECT id, stock FROM p RETURNING product_id
$$;

CREATE FUNCTION tap.issue(user_id bigint, coupon_id bigint)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM commerce.issue_coupon(user_id, coupon_id);
	INSERT INTO tap.outcome VALUES ('issue', user_id, '00000');
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	INSERT INTO tap.outcome VALUES ('issue', user_id, SQLSTATE);
	RETURN SQLSTATE;
END
$$;

CREATE FUNCTION tap.order(user_id bigint, items jsonb, coupon_id bigint DEFAULT NULL,
	idempotency_key text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	placed bigint;
BEGIN
	SELECT o.order_id INTO placed FROM commerce.place_order(user_id, items, coupon_id, idempotency_key) o;
	INSERT INTO invariant_input.acked_orders (order_id, user_id) VALUES (placed, user_id);
	INSERT INTO tap.outcome VALUES ('order', user_id, '00000');
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	INSERT INTO tap.outcome VALUES ('order', user_id, SQLSTATE);
	RETURN SQLSTATE;
END
$$;

CREATE FUNCTION tap.cancel_random(user_id bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	victim bigint;
BEGIN
	SELECT o.id INTO victim FROM commerce.orders o
	WHERE o.user_id = cancel_random.user_id AND o.status = 'paid'
	ORDER BY random() LIMIT 1;
	IF victim IS NULL THEN
		RETURN 'none';
	END IF;
	PERFORM commerce.cancel_order(victim, user_id);
	INSERT INTO tap.outcome VALUES ('cancel', user_id, '00000');
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	INSERT INTO tap.outcome VALUES ('cancel', user_id, SQLSTATE);
	RETURN SQLSTATE;
END
$$;

CREATE FUNCTION tap.charge(user_id bigint, amount bigint)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM commerce.charge_balance(user_id, amount);
	INSERT INTO tap.outcome VALUES ('charge', user_id, '00000');
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	INSERT INTO tap.outcome VALUES ('charge', user_id, SQLSTATE);
	RETURN SQLSTATE;
END
$$;

CREATE FUNCTION tap.decrement(product_id bigint, quantity integer)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM commerce.decrement_stock(product_id, quantity);
	INSERT INTO invariant_input.stock_moves VALUES (product_id, -quantity);
	INSERT INTO tap.outcome VALUES ('decrement', NULL, '00000');
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	INSERT INTO tap.outcome VALUES ('decrement', NULL, SQLSTATE);
	RETURN SQLSTATE;
END
$$;

CREATE FUNCTION tap.restock(product_id bigint, quantity integer)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM commerce.restock(product_id, quantity);
	INSERT INTO invariant_input.stock_moves VALUES (product_id, quantity);
	INSERT INTO tap.outcome VALUES ('restock', NULL, '00000');
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	INSERT INTO tap.outcome VALUES ('restock', NULL, SQLSTATE);
	RETURN SQLSTATE;
END
$$;

-- Floods: each call takes the next turn; turns past the participants do nothing.
CREATE FUNCTION tap.next_participant()
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	turn integer := nextval('tap.turn');
BEGIN
	RETURN (SELECT p.user_id FROM tap.participants p WHERE p.n = turn);
END
$$;

CREATE FUNCTION tap.issue_next(coupon_id bigint)
RETURNS text LANGUAGE sql AS $$
	SELECT coalesce((SELECT tap.issue(u, coupon_id) FROM tap.next_participant() u WHERE u IS NOT NULL), 'none')
$$;

CREATE FUNCTION tap.order_next(product_id bigint)
RETURNS text LANGUAGE sql AS $$
	SELECT coalesce((SELECT tap.order(u, jsonb_build_array(jsonb_build_object('product_id', product_id, 'quantity', 1)))
	                 FROM tap.next_participant() u WHERE u IS NOT NULL), 'none')
$$;

-- The mixed run's order: n (1..3) lines of products p1..p3, q units each;
-- coupon c when c is 1..5 (else none); idempotency key number k when k > 0.
CREATE FUNCTION tap.order_mixed(user_id bigint, n integer, p1 bigint, p2 bigint, p3 bigint,
	q integer, c bigint, k integer)
RETURNS text LANGUAGE sql AS $$
	SELECT tap.order(user_id,
		(SELECT jsonb_agg(jsonb_build_object('product_id', p, 'quantity', q))
		 FROM unnest((ARRAY[p1, p2, p3])[1:n]) p),
		CASE WHEN c BETWEEN 1 AND 5 THEN c END,
		CASE WHEN k > 0 THEN 'key-' || k END)
$$;
