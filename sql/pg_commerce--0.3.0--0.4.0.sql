/*
 * pg_commerce 0.3.0 -> 0.4.0
 *
 * Least privilege and money limits.
 *
 * - Three roles instead of one: commerce_api keeps the customer API only;
 *   the new commerce_operator runs the catalog, stock and coupon functions
 *   and the new commerce_relay claims and acknowledges outbox events.  A
 *   login role that must keep doing all of it is granted all three
 *   (docs/security.md).
 * - A wallet ceiling, GUC pg_commerce.max_balance: a charge that would take
 *   the balance plus what the user's paid orders could refund over it fails
 *   with BALANCE_LIMIT_EXCEEDED (PC426) instead of overflowing later, so a
 *   cancel can always refund.
 * - The functions that take buckets refuse to run at REPEATABLE READ or
 *   SERIALIZABLE (READ_COMMITTED_REQUIRED, PC500); the C functions check it
 *   in the new shared library, restock and cancel_order below.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_commerce UPDATE TO '0.4.0'" to load this file. \quit

DO $do$
DECLARE
	role_name text;
BEGIN
	FOREACH role_name IN ARRAY ARRAY['commerce_operator', 'commerce_relay'] LOOP
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
		END IF;
	END LOOP;
END
$do$;

CREATE FUNCTION commerce.max_balance()
RETURNS bigint
AS 'MODULE_PATHNAME', 'pg_commerce_max_balance'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION commerce.require_read_committed(function_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'pg_commerce_require_read_committed_sql'
LANGUAGE C VOLATILE STRICT;

CREATE OR REPLACE FUNCTION commerce.charge_balance(user_id bigint, amount bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	old_balance bigint;
	new_balance bigint;
	refundable numeric;
	ceiling bigint;
BEGIN
	IF amount IS NULL OR amount <= 0 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'amount must be a positive integer',
			format('amount was %s.', coalesce(amount::text, 'null')));
	END IF;
	SELECT u.balance INTO old_balance FROM commerce.users u WHERE u.id = charge_balance.user_id FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM commerce.raise('NOT_FOUND', 'user not found', format('No user has id %s.', charge_balance.user_id));
	END IF;
	-- What the user's paid orders would give back if all were cancelled is
	-- counted against the ceiling too: placing and cancelling orders only
	-- moves money between the two, so a refund can always be paid and no sum
	-- of a wallet ever passes max_balance (at most bigint's maximum).
	SELECT coalesce(sum(o.paid_amount), 0) INTO refundable
	FROM commerce.orders o WHERE o.user_id = charge_balance.user_id AND o.status = 'paid';
	ceiling := commerce.max_balance();
	IF amount > ceiling - old_balance - refundable THEN
		PERFORM commerce.raise('BALANCE_LIMIT_EXCEEDED', 'charge would exceed the wallet ceiling',
			format('Balance %s plus %s paid in open orders plus %s exceeds pg_commerce.max_balance %s.',
				old_balance, refundable, amount, ceiling));
	END IF;
	new_balance := old_balance + amount;
	UPDATE commerce.users u SET balance = new_balance WHERE u.id = charge_balance.user_id;
	INSERT INTO commerce.wallet_ledger (user_id, amount, balance_after, reason)
		VALUES (charge_balance.user_id, amount, new_balance, 'charge');
	RETURN new_balance;
END
$$;

CREATE OR REPLACE FUNCTION commerce.restock(product_id bigint, quantity integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
	total bigint;
BEGIN
	PERFORM commerce.require_read_committed('restock');
	IF quantity IS NULL OR quantity <= 0 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'quantity must be a positive integer',
			format('quantity was %s.', coalesce(quantity::text, 'null')));
	END IF;
	SELECT count(*), sum(b.quantity) INTO n, total
	FROM (SELECT sb.quantity FROM commerce.stock_buckets sb
	      WHERE sb.product_id = restock.product_id ORDER BY sb.bucket FOR UPDATE) b;
	IF n = 0 THEN
		PERFORM commerce.raise('NOT_FOUND', 'product not found', format('No product has id %s.', restock.product_id));
	END IF;
	IF total + quantity > 2147483647 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'stock would exceed 2147483647 units',
			format('Stock %s plus %s is too large.', total, quantity));
	END IF;
	UPDATE commerce.stock_buckets sb SET quantity = sb.quantity + s.share
	FROM commerce.split_quantity(restock.quantity, n) s
	WHERE sb.product_id = restock.product_id AND sb.bucket = s.bucket AND s.share > 0;
	RETURN (total + quantity)::integer;
END
$$;

CREATE OR REPLACE FUNCTION commerce.cancel_order(order_id bigint, user_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o commerce.orders%ROWTYPE;
	new_balance bigint;
	item record;
	put_bucket integer;
BEGIN
	PERFORM commerce.require_read_committed('cancel_order');
	SELECT * INTO o FROM commerce.orders WHERE id = cancel_order.order_id FOR UPDATE;
	IF NOT FOUND OR o.user_id <> cancel_order.user_id THEN
		PERFORM commerce.raise('NOT_FOUND', 'order not found',
			format('User %s has no order with id %s.', cancel_order.user_id, cancel_order.order_id));
	END IF;
	IF o.status = 'cancelled' THEN
		RETURN o.status;
	END IF;

	SELECT u.balance + o.paid_amount INTO new_balance
	FROM commerce.users u WHERE u.id = o.user_id FOR UPDATE;
	IF o.paid_amount > 0 THEN
		UPDATE commerce.users u SET balance = new_balance WHERE u.id = o.user_id;
		INSERT INTO commerce.wallet_ledger (user_id, amount, balance_after, reason, order_id)
			VALUES (o.user_id, o.paid_amount, new_balance, 'order_refund', o.id);
	END IF;
	UPDATE commerce.payments p SET status = 'refunded', refunded_at = now() WHERE p.order_id = o.id;

	IF o.issued_coupon_id IS NOT NULL THEN
		UPDATE commerce.issued_coupons ic SET status = 'issued', order_id = NULL, used_at = NULL
		WHERE ic.id = o.issued_coupon_id;
	END IF;

	FOR item IN SELECT oi.product_id, oi.quantity, oi.stock_bucket FROM commerce.order_items oi
	            WHERE oi.order_id = o.id ORDER BY oi.product_id
	LOOP
		put_bucket := commerce.stock_put_back(item.product_id, item.quantity, item.stock_bucket);
		INSERT INTO commerce.sales_stats AS s (hour, product_id, slot, quantity)
			VALUES (date_trunc('hour', o.created_at), item.product_id, put_bucket, -item.quantity)
			ON CONFLICT (hour, product_id, slot) DO UPDATE SET quantity = s.quantity + excluded.quantity;
	END LOOP;

	UPDATE commerce.orders SET status = 'cancelled', cancelled_at = now() WHERE id = o.id;
	INSERT INTO commerce.outbox (event_type, aggregate_id, payload)
		VALUES ('order_cancelled', o.id, jsonb_build_object(
			'order_id', o.id, 'user_id', o.user_id, 'refunded_amount', o.paid_amount,
			'issued_coupon_id', o.issued_coupon_id));
	RETURN 'cancelled';
END
$$;

REVOKE ALL ON FUNCTION commerce.max_balance(), commerce.require_read_committed(text) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
	commerce.create_product(text, bigint, integer, text, integer),
	commerce.restock(bigint, integer),
	commerce.decrement_stock(bigint, integer),
	commerce.create_coupon(text, text, bigint, integer, timestamptz, timestamptz, bigint, bigint, text, integer),
	commerce.claim_events(integer, interval),
	commerce.ack_events(bigint[])
FROM commerce_api;

GRANT USAGE ON SCHEMA commerce TO commerce_api, commerce_operator, commerce_relay;
GRANT USAGE ON TYPE commerce.order_details, commerce.product_info TO commerce_api, commerce_operator;
GRANT EXECUTE ON FUNCTION commerce.error_codes() TO commerce_api, commerce_operator, commerce_relay;

-- The customer API: wallets, reading the catalog, coupons, orders.
GRANT EXECUTE ON FUNCTION
	commerce.create_user(text),
	commerce.charge_balance(bigint, bigint),
	commerce.get_balance(bigint),
	commerce.get_product(bigint),
	commerce.list_products(text, text, integer, bigint),
	commerce.user_coupons(bigint),
	commerce.issue_coupon(bigint, bigint),
	commerce.place_order(bigint, jsonb, bigint, text),
	commerce.cancel_order(bigint, bigint),
	commerce.get_order(bigint),
	commerce.popular_products(integer, integer)
TO commerce_api;

-- Operators: the catalog, stock and coupons, users, and reading everything.
GRANT EXECUTE ON FUNCTION
	commerce.create_user(text),
	commerce.create_product(text, bigint, integer, text, integer),
	commerce.restock(bigint, integer),
	commerce.decrement_stock(bigint, integer),
	commerce.create_coupon(text, text, bigint, integer, timestamptz, timestamptz, bigint, bigint, text, integer),
	commerce.get_balance(bigint),
	commerce.get_product(bigint),
	commerce.list_products(text, text, integer, bigint),
	commerce.user_coupons(bigint),
	commerce.get_order(bigint),
	commerce.popular_products(integer, integer)
TO commerce_operator;

-- The outbox relay: taking events with a lease and acknowledging them.
GRANT EXECUTE ON FUNCTION
	commerce.claim_events(integer, interval),
	commerce.ack_events(bigint[])
TO commerce_relay;
