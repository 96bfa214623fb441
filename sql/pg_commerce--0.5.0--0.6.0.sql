/*
 * pg_commerce 0.5.0 -> 0.6.0
 *
 * One keyed-call mechanism for every write commerce-http offers:
 * - keyed_call (commerce_api) also takes place_order, so that an order sent
 *   with the client's Idempotency-Key stores its first final answer, a
 *   refusal included, and replays it like the other routes;
 * - operator_call (commerce_operator) runs the operator's writes
 *   (create_user, create_product, restock, create_coupon), under a key when
 *   one is given;
 * - final_answer and keyed_answer, the two halves both share (owner only).
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_commerce UPDATE TO '0.6.0'" to load this file. \quit

-- Runs one operation of the keyed calls and gives its final answer: the
-- status and the JSON body the API answers, keys in the API's order.  Final
-- answers are successes and the extension's own errors (SQLSTATE class PC,
-- 4xx), whose effects are rolled back; anything else (a deadlock, a lost
-- connection, a cancel) is raised.  The operation was checked by the
-- caller (keyed_call, operator_call).  Internal: granted to no role
-- (SECURITY DEFINER like every function that writes).
CREATE FUNCTION commerce.final_answer(user_id bigint, key text, operation text, args jsonb,
	OUT status integer, OUT body json)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	failed_state text;
	failed_message text;
BEGIN
	BEGIN
		CASE operation
		WHEN 'place_order' THEN
			SELECT 201, json_build_object('orderId', o.order_id, 'status', o.status,
				'totalAmount', o.total_amount, 'discountAmount', o.discount_amount, 'paidAmount', o.paid_amount)
			INTO status, body
			FROM commerce.place_order(final_answer.user_id, args->'items', (args->>'coupon_id')::bigint,
			                          final_answer.key) o;
		WHEN 'charge_balance' THEN
			status := 200;
			body := json_build_object('userId', user_id,
				'balance', commerce.charge_balance(user_id, (args->>'amount')::bigint));
		WHEN 'cancel_order' THEN
			status := 200;
			body := json_build_object('orderId', (args->>'order_id')::bigint,
				'status', commerce.cancel_order((args->>'order_id')::bigint, user_id));
		WHEN 'issue_coupon' THEN
			status := 201;
			body := json_build_object('issuedCouponId', commerce.issue_coupon(user_id, (args->>'coupon_id')::bigint),
				'couponId', (args->>'coupon_id')::bigint, 'userId', user_id, 'status', 'issued');
		WHEN 'issue_coupon_by_code' THEN
			SELECT 201, json_build_object('issuedCouponId', i.issued_coupon_id, 'couponId', i.coupon_id,
			                              'userId', final_answer.user_id, 'status', 'issued')
			INTO status, body
			FROM commerce.issue_coupon_by_code(final_answer.user_id, args->>'code') i;
		-- the operator's writes echo what they stored, as the functions store it
		WHEN 'create_user' THEN
			status := 201;
			body := json_build_object('id', commerce.create_user(args->>'name'), 'name', args->>'name');
		WHEN 'create_product' THEN
			status := 201;
			body := json_build_object('id', commerce.create_product(args->>'name', (args->>'price')::bigint,
					(args->>'stock')::integer, args->>'category', (args->>'buckets')::integer),
				'name', args->>'name', 'category', args->>'category',
				'price', (args->>'price')::bigint, 'stock', (args->>'stock')::integer);
		WHEN 'restock' THEN
			status := 200;
			body := json_build_object('productId', (args->>'product_id')::bigint,
				'stock', commerce.restock((args->>'product_id')::bigint, (args->>'quantity')::integer));
		WHEN 'create_coupon' THEN
			status := 201;
			body := json_build_object('id', commerce.create_coupon(args->>'code', args->>'discount_type',
					(args->>'discount_value')::bigint, (args->>'total_quantity')::integer,
					coalesce((args->>'valid_from')::timestamptz, now()), (args->>'valid_until')::timestamptz,
					coalesce((args->>'min_order_amount')::bigint, 0), (args->>'max_discount')::bigint,
					args->>'name'),
				'code', args->>'code', 'name', coalesce(args->>'name', args->>'code'),
				'discountType', args->>'discount_type', 'discountValue', (args->>'discount_value')::bigint,
				'maxDiscount', (args->>'max_discount')::bigint,
				'minOrderAmount', coalesce((args->>'min_order_amount')::bigint, 0),
				'totalQuantity', (args->>'total_quantity')::integer,
				'validFrom', coalesce((args->>'valid_from')::timestamptz, now()),
				'validUntil', (args->>'valid_until')::timestamptz);
		END CASE;				-- (no ELSE: the callers checked the operation)
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS failed_state = RETURNED_SQLSTATE, failed_message = MESSAGE_TEXT;
		IF failed_state NOT LIKE 'PC4%' THEN
			RAISE;				-- not a final answer
		END IF;
		SELECT e.http_status, json_build_object('error', json_build_object('code', e.code, 'message', failed_message))
		INTO status, body
		FROM commerce.error_codes() e WHERE e.sqlstate = failed_state;
	END;
END
$$;


-- The answer of (user, key), payment-API style: the first final answer is
-- stored with the effect, in the same transaction, and every later request
-- with the key gets that answer back (replayed = true) without running
-- again; the same key with another request is IDEMPOTENCY_MISMATCH.  What
-- final_answer raises stores nothing, so the client's retry runs the
-- operation again.  Answers older than pg_commerce.idempotency_ttl count as
-- absent (purge_idempotency_keys deletes them).  Internal: granted to no
-- role.
CREATE FUNCTION commerce.keyed_answer(user_id bigint, key text, operation text, args jsonb)
RETURNS TABLE (status integer, body text, replayed boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	request text := operation || ' ' || coalesce(args::text, 'null');	-- jsonb's text is canonical
	stored commerce.idempotency_keys%ROWTYPE;
	answer record;
BEGIN
	IF key IS NULL OR length(key) NOT BETWEEN 1 AND 200 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'idempotency_key must be 1 to 200 characters');
	END IF;
	PERFORM commerce.lock_idempotency_key(user_id, key);
	SELECT * INTO stored FROM commerce.idempotency_keys k
	WHERE k.user_id = keyed_answer.user_id AND k.key = keyed_answer.key
	  AND k.created_at > now() - commerce.idempotency_ttl();
	IF FOUND THEN
		IF stored.request <> request THEN
			PERFORM commerce.raise('IDEMPOTENCY_MISMATCH', 'idempotency key reused with another request',
				format('Key %s was first used for another request.', quote_literal(key)));
		END IF;
		RETURN QUERY SELECT stored.status, stored.body, true;
		RETURN;
	END IF;
	SELECT * INTO answer FROM commerce.final_answer(user_id, key, operation, args);
	-- an expired answer of the same key is replaced
	INSERT INTO commerce.idempotency_keys AS k (user_id, key, request, status, body)
	VALUES (keyed_answer.user_id, keyed_answer.key, request, answer.status, answer.body::text)
	ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO UPDATE
		SET request = excluded.request, status = excluded.status, body = excluded.body, created_at = now();
	RETURN QUERY SELECT answer.status, answer.body::text, false;
END
$$;


-- A customer's operation under an Idempotency-Key (commerce-http sends
-- charges, cancels, keyed coupon issues and orders with the client's own
-- key through it): place_order, charge_balance, cancel_order, issue_coupon,
-- issue_coupon_by_code, args as the functions' arguments by name.  Returns
-- the answer, stored or new (keyed_answer).
CREATE OR REPLACE FUNCTION commerce.keyed_call(user_id bigint, key text, operation text, args jsonb)
RETURNS TABLE (status integer, body text, replayed boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- a caller's mistake, not an answer to store
	IF operation IS NULL OR operation NOT IN ('place_order', 'charge_balance', 'cancel_order',
	                                          'issue_coupon', 'issue_coupon_by_code') THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'unknown operation',
			format('operation was %s.', coalesce(quote_literal(operation), 'null')));
	END IF;
	RETURN QUERY SELECT * FROM commerce.keyed_answer(user_id, key, operation, args);
END
$$;


-- An operator's write, under an Idempotency-Key when key is not null (the
-- keys are the operator's, by operator_id, the admin token's sub):
-- create_user, create_product, restock, create_coupon.  Every operator
-- write of commerce-http goes through it, so that a write answers the same
-- with and without a key.
CREATE FUNCTION commerce.operator_call(operator_id bigint, key text, operation text, args jsonb)
RETURNS TABLE (status integer, body text, replayed boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF operation IS NULL OR operation NOT IN ('create_user', 'create_product', 'restock', 'create_coupon') THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'unknown operation',
			format('operation was %s.', coalesce(quote_literal(operation), 'null')));
	END IF;
	IF key IS NULL THEN
		RETURN QUERY SELECT a.status, a.body::text, false
		FROM commerce.final_answer(operator_id, NULL, operation, args) a;
	ELSE
		RETURN QUERY SELECT * FROM commerce.keyed_answer(operator_id, key, operation, args);
	END IF;
END
$$;


REVOKE ALL ON FUNCTION commerce.final_answer(bigint, text, text, jsonb),
	commerce.keyed_answer(bigint, text, text, jsonb),
	commerce.operator_call(bigint, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce.operator_call(bigint, text, text, jsonb) TO commerce_operator;
