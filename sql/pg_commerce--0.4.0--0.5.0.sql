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
 *   get_order and user_orders (owner only).
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

REVOKE ALL ON FUNCTION commerce.order_items_json(bigint), commerce.get_coupon(bigint),
	commerce.issue_coupon_by_code(bigint, text), commerce.user_orders(bigint, integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce.issue_coupon_by_code(bigint, text) TO commerce_api;
GRANT EXECUTE ON FUNCTION commerce.user_orders(bigint, integer, bigint) TO commerce_api, commerce_operator;
GRANT EXECUTE ON FUNCTION commerce.get_coupon(bigint) TO commerce_operator;
