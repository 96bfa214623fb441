/*
 * pg_commerce 0.4.0 -> 0.5.0
 *
 * What commerce-http's customer and operator routes need beyond 0.4.0:
 * - user_orders(user_id, lim, after): a user's orders, newest first, by
 *   keyset pages (commerce_api, commerce_operator);
 * - issue_coupon_by_code(user_id, code): issuing a coupon by the code
 *   customers know (commerce_api);
 * - get_coupon(coupon_id): a coupon with its remaining quantity
 *   (commerce_operator);
 * - order_items_json(order_id), the lines of an order, now shared by
 *   get_order and user_orders (owner only);
 * - idempotency for the customer routes other than orders: the table
 *   idempotency_keys (dumped with its data), keyed_call (commerce_api),
 *   purge_idempotency_keys (commerce_operator) and the GUC
 *   pg_commerce.idempotency_ttl (24 h).
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_commerce UPDATE TO '0.5.0'" to load this file. \quit

-- An order's lines as the API shows them (get_order, user_orders).
CREATE FUNCTION commerce.order_items_json(order_id bigint)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT jsonb_agg(jsonb_build_object(
	           'product_id', oi.product_id, 'name', p.name, 'quantity', oi.quantity,
	           'unit_price', oi.unit_price, 'amount', oi.unit_price * oi.quantity)
	       ORDER BY oi.product_id)
	FROM commerce.order_items oi JOIN commerce.products p ON p.id = oi.product_id
	WHERE oi.order_id = order_items_json.order_id
$$;

CREATE OR REPLACE FUNCTION commerce.get_order(order_id bigint)
RETURNS SETOF commerce.order_details
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY
		SELECT o.id, o.user_id, o.status, o.total_amount, o.discount_amount, o.paid_amount,
		       ic.coupon_id, o.issued_coupon_id, o.created_at, o.cancelled_at,
		       commerce.order_items_json(o.id)
		FROM commerce.orders o LEFT JOIN commerce.issued_coupons ic ON ic.id = o.issued_coupon_id
		WHERE o.id = get_order.order_id;
	IF NOT FOUND THEN
		PERFORM commerce.raise('NOT_FOUND', 'order not found', format('No order has id %s.', get_order.order_id));
	END IF;
END
$$;

-- A coupon with what is left of it, for operators.
CREATE FUNCTION commerce.get_coupon(coupon_id bigint)
RETURNS TABLE (id bigint, code text, name text, discount_type text, discount_value bigint,
	max_discount bigint, min_order_amount bigint, total_quantity integer, remaining bigint,
	valid_from timestamptz, valid_until timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY
		SELECT c.id, c.code, c.name, c.discount_type, c.discount_value, c.max_discount,
		       c.min_order_amount, c.total_quantity,
		       (SELECT coalesce(sum(b.quantity), 0)::bigint FROM commerce.coupon_buckets b WHERE b.coupon_id = c.id),
		       c.valid_from, c.valid_until
		FROM commerce.coupons c WHERE c.id = get_coupon.coupon_id;
	IF NOT FOUND THEN
		PERFORM commerce.raise('NOT_FOUND', 'coupon not found', format('No coupon has id %s.', get_coupon.coupon_id));
	END IF;
END
$$;

-- Issues a coupon named by its code, as customers know coupons; the same
-- rules and answers as issue_coupon (which it calls), plus the coupon's id.
CREATE FUNCTION commerce.issue_coupon_by_code(user_id bigint, code text)
RETURNS TABLE (issued_coupon_id bigint, coupon_id bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	found_id bigint;
BEGIN
	SELECT c.id INTO found_id FROM commerce.coupons c WHERE c.code = issue_coupon_by_code.code;
	IF NOT FOUND THEN
		PERFORM commerce.raise('NOT_FOUND', 'coupon not found',
			format('No coupon has code %s.', coalesce(quote_literal(issue_coupon_by_code.code), 'null')));
	END IF;
	RETURN QUERY SELECT commerce.issue_coupon(issue_coupon_by_code.user_id, found_id), found_id;
END
$$;

-- A user's orders, newest first, a page at a time: `after` is the id of the
-- last order of the previous page (keyset pagination, stable while orders
-- come in).
CREATE FUNCTION commerce.user_orders(user_id bigint, lim integer DEFAULT 20, after bigint DEFAULT NULL)
RETURNS SETOF commerce.order_details
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF lim IS NULL OR lim NOT BETWEEN 1 AND 100 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'lim must be between 1 and 100',
			format('lim was %s.', coalesce(lim::text, 'null')));
	END IF;
	IF NOT EXISTS (SELECT FROM commerce.users u WHERE u.id = user_orders.user_id) THEN
		PERFORM commerce.raise('NOT_FOUND', 'user not found', format('No user has id %s.', user_orders.user_id));
	END IF;
	RETURN QUERY
		SELECT o.id, o.user_id, o.status, o.total_amount, o.discount_amount, o.paid_amount,
		       ic.coupon_id, o.issued_coupon_id, o.created_at, o.cancelled_at,
		       commerce.order_items_json(o.id)
		FROM commerce.orders o LEFT JOIN commerce.issued_coupons ic ON ic.id = o.issued_coupon_id
		WHERE o.user_id = user_orders.user_id AND (after IS NULL OR o.id < after)
		ORDER BY o.id DESC
		LIMIT lim;
END
$$;

-- The first final answer (status and body, 4xx included) of each request
-- sent with an Idempotency-Key to a route other than orders (which keep
-- theirs in orders.idempotency_key), stored in the same transaction as the
-- request's effect by commerce.keyed_call.  No foreign key on user_id: a
-- request for a user that does not exist has an answer too (404).
CREATE TABLE commerce.idempotency_keys (
	user_id     bigint NOT NULL,
	key         text NOT NULL CHECK (pg_catalog.length(key) BETWEEN 1 AND 200),
	request     text NOT NULL,	-- the operation and its arguments, canonical
	status      integer NOT NULL CHECK (status BETWEEN 200 AND 499),
	body        text NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON commerce.idempotency_keys (created_at);
SELECT pg_catalog.pg_extension_config_dump('commerce.idempotency_keys', '');

-- How long an Idempotency-Key's answer is kept (GUC pg_commerce.idempotency_ttl).
CREATE FUNCTION commerce.idempotency_ttl()
RETURNS interval
AS 'MODULE_PATHNAME', 'pg_commerce_idempotency_ttl'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- Takes the advisory lock of (user, key), the same one place_order takes for
-- its key (lock order step 1): a second request with the key waits for the
-- first to commit or roll back, then sees its answer.
CREATE FUNCTION commerce.lock_idempotency_key(user_id bigint, key text)
RETURNS void
AS 'MODULE_PATHNAME', 'pg_commerce_lock_idempotency_key'
LANGUAGE C VOLATILE STRICT;

-- Runs one customer operation under an Idempotency-Key, payment-API style:
-- the first final answer for (user, key) is stored with the effect, in the
-- same transaction, and every later request with the key gets that answer
-- back (replayed = true) without running again; the same key with another
-- request is IDEMPOTENCY_MISMATCH.  Final answers are successes and the
-- extension's own errors (SQLSTATE class PC, 4xx); anything else (a
-- deadlock, a lost connection, a cancel) stores nothing and is raised, so
-- the client's retry runs the operation again.  Answers older than
-- pg_commerce.idempotency_ttl count as absent (purge_idempotency_keys
-- deletes them).  The body is JSON text with the keys in the API's order.
CREATE FUNCTION commerce.keyed_call(user_id bigint, key text, operation text, args jsonb)
RETURNS TABLE (status integer, body text, replayed boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	request text := operation || ' ' || coalesce(args::text, 'null');	-- jsonb's text is canonical
	stored commerce.idempotency_keys%ROWTYPE;
	answer json;
	answer_status integer;
	failed_state text;
	failed_message text;
BEGIN
	IF key IS NULL OR length(key) NOT BETWEEN 1 AND 200 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'idempotency_key must be 1 to 200 characters');
	END IF;
	-- a caller's mistake, not an answer to store
	IF operation IS NULL OR operation NOT IN ('charge_balance', 'cancel_order', 'issue_coupon', 'issue_coupon_by_code') THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'unknown operation',
			format('operation was %s.', coalesce(quote_literal(operation), 'null')));
	END IF;
	PERFORM commerce.lock_idempotency_key(user_id, key);
	SELECT * INTO stored FROM commerce.idempotency_keys k
	WHERE k.user_id = keyed_call.user_id AND k.key = keyed_call.key
	  AND k.created_at > now() - commerce.idempotency_ttl();
	IF FOUND THEN
		IF stored.request <> request THEN
			PERFORM commerce.raise('IDEMPOTENCY_MISMATCH', 'idempotency key reused with another request',
				format('Key %s was first used for another request.', quote_literal(key)));
		END IF;
		RETURN QUERY SELECT stored.status, stored.body, true;
		RETURN;
	END IF;

	BEGIN
		CASE operation
		WHEN 'charge_balance' THEN
			answer := json_build_object('userId', user_id,
				'balance', commerce.charge_balance(user_id, (args->>'amount')::bigint));
			answer_status := 200;
		WHEN 'cancel_order' THEN
			answer := json_build_object('orderId', (args->>'order_id')::bigint,
				'status', commerce.cancel_order((args->>'order_id')::bigint, user_id));
			answer_status := 200;
		WHEN 'issue_coupon' THEN
			answer := json_build_object('issuedCouponId', commerce.issue_coupon(user_id, (args->>'coupon_id')::bigint),
				'couponId', (args->>'coupon_id')::bigint, 'userId', user_id, 'status', 'issued');
			answer_status := 201;
		WHEN 'issue_coupon_by_code' THEN
			SELECT json_build_object('issuedCouponId', i.issued_coupon_id, 'couponId', i.coupon_id,
			                         'userId', keyed_call.user_id, 'status', 'issued')
			INTO answer FROM commerce.issue_coupon_by_code(keyed_call.user_id, args->>'code') i;
			answer_status := 201;
		END CASE;				-- (no ELSE: checked above)
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS failed_state = RETURNED_SQLSTATE, failed_message = MESSAGE_TEXT;
		IF failed_state NOT LIKE 'PC4%' THEN
			RAISE;				-- not a final answer: nothing is stored
		END IF;
		SELECT e.http_status, json_build_object('error', json_build_object('code', e.code, 'message', failed_message))
		INTO answer_status, answer
		FROM commerce.error_codes() e WHERE e.sqlstate = failed_state;
	END;
	-- an expired answer of the same key is replaced
	INSERT INTO commerce.idempotency_keys AS k (user_id, key, request, status, body)
	VALUES (keyed_call.user_id, keyed_call.key, request, answer_status, answer::text)
	ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO UPDATE
		SET request = excluded.request, status = excluded.status, body = excluded.body, created_at = now();
	RETURN QUERY SELECT answer_status, answer::text, false;
END
$$;

-- Deletes the answers older than pg_commerce.idempotency_ttl; returns how
-- many.  Run it now and then (pg_cron: SELECT cron.schedule('*/10 * * * *',
-- 'SELECT commerce.purge_idempotency_keys()')); expired answers are ignored
-- anyway, the purge only gives the space back.
CREATE FUNCTION commerce.purge_idempotency_keys()
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	WITH gone AS (
		DELETE FROM commerce.idempotency_keys k
		WHERE k.created_at <= now() - commerce.idempotency_ttl()
		RETURNING 1
	)
	SELECT count(*) FROM gone
$$;

REVOKE ALL ON TABLE commerce.idempotency_keys FROM PUBLIC;
REVOKE ALL ON FUNCTION commerce.order_items_json(bigint), commerce.get_coupon(bigint),
	commerce.issue_coupon_by_code(bigint, text), commerce.user_orders(bigint, integer, bigint),
	commerce.idempotency_ttl(), commerce.lock_idempotency_key(bigint, text),
	commerce.keyed_call(bigint, text, text, jsonb), commerce.purge_idempotency_keys() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce.issue_coupon_by_code(bigint, text) TO commerce_api;
GRANT EXECUTE ON FUNCTION commerce.user_orders(bigint, integer, bigint) TO commerce_api, commerce_operator;
GRANT EXECUTE ON FUNCTION commerce.get_coupon(bigint) TO commerce_operator;
GRANT EXECUTE ON FUNCTION commerce.keyed_call(bigint, text, text, jsonb) TO commerce_api;
GRANT EXECUTE ON FUNCTION commerce.purge_idempotency_keys() TO commerce_operator;
