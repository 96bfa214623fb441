/*
 * pg_commerce 0.1.0, the base: the first release's install script.
 *
 * Released, so its SQL never changes.  Every later version is this file
 * followed by the upgrade scripts pg_commerce--<from>--<to>.sql beside it,
 * in order; the Makefile concatenates them into the current version's
 * full script (pg_commerce--<version>.sql, built, not kept).
 *
 * Vocabulary
 *   bucket   one row holding part of a countable quantity (a product's stock,
 *            a coupon's remaining quantity).  Concurrent takers pick different
 *            buckets with SKIP LOCKED instead of queueing on one row.
 *   slot     one row of sales statistics; a taker writes the slot numbered
 *            like the stock bucket it holds, so statistics add no contention.
 *
 * Global lock order (every function below and the C files in extension/ follow it,
 * so no two transactions of this API can deadlock):
 *   1. transaction-scoped advisory locks (idempotency key, user+coupon)
 *   2. an order row            (cancel_order)
 *   3. a user row              (wallet)
 *   4. an issued coupon row
 *   5. stock / coupon buckets: ascending product (coupon) id, and within one
 *      id either a single bucket taken without waiting (SKIP LOCKED), a single
 *      bucket waited for while holding no other bucket of that id, or all of
 *      its buckets in ascending bucket order
 *   6. sales statistics rows, ascending product id (each protected in effect
 *      by the bucket lock of the same number)
 *
 * Everything is schema-qualified; every function pins its search_path.
 */

-- complain if the script is sourced in psql rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_commerce" to load this file. \quit

-- The API role: may execute the functions and nothing else.  Roles are
-- cluster-wide, so an earlier installation (or another database) may have
-- created it already.
DO $do$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'commerce_api') THEN
		CREATE ROLE commerce_api NOLOGIN;
	END IF;
END
$do$;

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE TABLE commerce.users (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name        text NOT NULL CHECK (pg_catalog.length(name) BETWEEN 1 AND 200),
	balance     bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
	created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Append-only: the balance always equals the sum of this ledger.
CREATE TABLE commerce.wallet_ledger (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id       bigint NOT NULL REFERENCES commerce.users(id),
	amount        bigint NOT NULL CHECK (amount <> 0),
	balance_after bigint NOT NULL CHECK (balance_after >= 0),
	reason        text NOT NULL CHECK (reason IN ('charge', 'order_payment', 'order_refund')),
	order_id      bigint,
	created_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX wallet_ledger_user_idx ON commerce.wallet_ledger (user_id);

CREATE TABLE commerce.products (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name        text NOT NULL CHECK (pg_catalog.length(name) BETWEEN 1 AND 200),
	category    text CHECK (pg_catalog.length(category) BETWEEN 1 AND 100),
	price       bigint NOT NULL CHECK (price >= 0),
	created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX products_category_idx ON commerce.products (category, id);

-- A product's stock is the sum of its buckets.
CREATE TABLE commerce.stock_buckets (
	product_id  bigint NOT NULL REFERENCES commerce.products(id),
	bucket      integer NOT NULL CHECK (bucket >= 0),
	quantity    integer NOT NULL CHECK (quantity >= 0),
	PRIMARY KEY (product_id, bucket)
);

CREATE TABLE commerce.coupons (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	code             text NOT NULL UNIQUE CHECK (pg_catalog.length(code) BETWEEN 1 AND 64),
	name             text NOT NULL,
	discount_type    text NOT NULL CHECK (discount_type IN ('fixed', 'percent')),
	discount_value   bigint NOT NULL CHECK (discount_value > 0),
	max_discount     bigint CHECK (max_discount > 0),
	min_order_amount bigint NOT NULL DEFAULT 0 CHECK (min_order_amount >= 0),
	total_quantity   integer NOT NULL CHECK (total_quantity >= 0),
	valid_from       timestamptz NOT NULL,
	valid_until      timestamptz,
	created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CHECK (discount_type = 'fixed' OR discount_value <= 100),
	CHECK (valid_until IS NULL OR valid_until > valid_from)
);

-- A coupon's remaining quantity is the sum of its buckets.
CREATE TABLE commerce.coupon_buckets (
	coupon_id   bigint NOT NULL REFERENCES commerce.coupons(id),
	bucket      integer NOT NULL CHECK (bucket >= 0),
	quantity    integer NOT NULL CHECK (quantity >= 0),
	PRIMARY KEY (coupon_id, bucket)
);

CREATE TABLE commerce.orders (
	id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id             bigint NOT NULL REFERENCES commerce.users(id),
	status              text NOT NULL CHECK (status IN ('paid', 'cancelled')),
	total_amount        bigint NOT NULL CHECK (total_amount >= 0),
	discount_amount     bigint NOT NULL CHECK (discount_amount >= 0),
	paid_amount         bigint NOT NULL CHECK (paid_amount >= 0),
	issued_coupon_id    bigint,
	idempotency_key     text CHECK (pg_catalog.length(idempotency_key) BETWEEN 1 AND 200),
	request_fingerprint text NOT NULL,
	created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
	cancelled_at        timestamptz,
	CHECK (total_amount - discount_amount = paid_amount),
	CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX orders_user_idx ON commerce.orders (user_id);
-- One order per idempotency key and user (the last guard behind the lock).
CREATE UNIQUE INDEX orders_idempotency_idx ON commerce.orders (user_id, idempotency_key)
	WHERE idempotency_key IS NOT NULL;

-- product_id has no foreign key on purpose: the check would take FOR KEY
-- SHARE on the product row in every order, so concurrent orders of a hot
-- product would pile up in one MultiXact (measured: -20% place_order TPS).
-- A product cannot disappear anyway: its stock_buckets reference it, and the
-- API deletes neither.
CREATE TABLE commerce.order_items (
	order_id    bigint NOT NULL REFERENCES commerce.orders(id),
	product_id  bigint NOT NULL,
	quantity    integer NOT NULL CHECK (quantity > 0),
	unit_price  bigint NOT NULL CHECK (unit_price >= 0),
	-- the bucket the stock was taken from first; cancel puts it back there
	stock_bucket integer NOT NULL,
	PRIMARY KEY (order_id, product_id)
);

CREATE TABLE commerce.issued_coupons (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	coupon_id   bigint NOT NULL REFERENCES commerce.coupons(id),
	user_id     bigint NOT NULL REFERENCES commerce.users(id),
	status      text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'used')),
	order_id    bigint REFERENCES commerce.orders(id),
	issued_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	used_at     timestamptz,
	-- at most one per user per coupon: the last guard behind the advisory lock
	UNIQUE (coupon_id, user_id),
	CHECK ((status = 'used') = (order_id IS NOT NULL))
);
CREATE INDEX issued_coupons_user_idx ON commerce.issued_coupons (user_id);

ALTER TABLE commerce.orders ADD FOREIGN KEY (issued_coupon_id) REFERENCES commerce.issued_coupons(id);

CREATE TABLE commerce.payments (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_id    bigint NOT NULL UNIQUE REFERENCES commerce.orders(id),
	amount      bigint NOT NULL CHECK (amount >= 0),
	method      text NOT NULL DEFAULT 'wallet',
	status      text NOT NULL CHECK (status IN ('paid', 'refunded')),
	created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	refunded_at timestamptz
);

-- Domain events for the external data platform, written in the same
-- transaction as the change they describe.
CREATE TABLE commerce.outbox (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_type     text NOT NULL CHECK (event_type IN ('order_placed', 'order_cancelled', 'coupon_issued')),
	aggregate_id   bigint NOT NULL,
	payload        jsonb NOT NULL,
	created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
	claimed_until  timestamptz,
	acked_at       timestamptz
);
CREATE INDEX outbox_pending_idx ON commerce.outbox (id) WHERE acked_at IS NULL;

-- Units sold per product per hour, split in slots so that concurrent orders
-- of one hot product never write the same row (see "slot" above).
-- No foreign key on product_id, for the reason given at order_items.
CREATE TABLE commerce.sales_stats (
	hour        timestamptz NOT NULL,
	product_id  bigint NOT NULL,
	slot        integer NOT NULL,
	quantity    bigint NOT NULL,
	PRIMARY KEY (hour, product_id, slot)
);

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

-- Bucket counts are chosen per product / coupon at creation; these are the
-- defaults when the caller passes NULL (GUCs pg_commerce.stock_buckets and
-- pg_commerce.coupon_buckets).
CREATE FUNCTION commerce.default_buckets(kind text)
RETURNS integer
AS 'MODULE_PATHNAME', 'pg_commerce_default_buckets'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

------------------------------------------------------------------------------
-- Errors
------------------------------------------------------------------------------

CREATE FUNCTION commerce.error_codes()
RETURNS TABLE (sqlstate text, code text, http_status integer, condition text)
AS 'MODULE_PATHNAME', 'pg_commerce_error_codes'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Raises one of the extension's errors from SQL-language functions; the
-- SQLSTATE comes from the same table as the C code's.
CREATE FUNCTION commerce.raise(code text, message text, detail text DEFAULT NULL, hint text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'pg_commerce_raise'
LANGUAGE C VOLATILE;

------------------------------------------------------------------------------
-- Users and wallets
------------------------------------------------------------------------------

CREATE FUNCTION commerce.create_user(name text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	new_id bigint;
BEGIN
	IF name IS NULL OR length(name) NOT BETWEEN 1 AND 200 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'name must be 1 to 200 characters');
	END IF;
	INSERT INTO commerce.users (name) VALUES (create_user.name) RETURNING id INTO new_id;
	RETURN new_id;
END
$$;

-- Locks: the user row (lock order step 3).
CREATE FUNCTION commerce.charge_balance(user_id bigint, amount bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	old_balance bigint;
	new_balance bigint;
BEGIN
	IF amount IS NULL OR amount <= 0 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'amount must be a positive integer',
			format('amount was %s.', coalesce(amount::text, 'null')));
	END IF;
	SELECT u.balance INTO old_balance FROM commerce.users u WHERE u.id = charge_balance.user_id FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM commerce.raise('NOT_FOUND', 'user not found', format('No user has id %s.', charge_balance.user_id));
	END IF;
	IF old_balance > 9223372036854775807 - amount THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'amount would overflow the balance',
			format('Balance %s plus %s exceeds the bigint range.', old_balance, amount));
	END IF;
	new_balance := old_balance + amount;
	UPDATE commerce.users u SET balance = new_balance WHERE u.id = charge_balance.user_id;
	INSERT INTO commerce.wallet_ledger (user_id, amount, balance_after, reason)
		VALUES (charge_balance.user_id, amount, new_balance, 'charge');
	RETURN new_balance;
END
$$;

CREATE FUNCTION commerce.get_balance(user_id bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result bigint;
BEGIN
	SELECT u.balance INTO result FROM commerce.users u WHERE u.id = get_balance.user_id;
	IF NOT FOUND THEN
		PERFORM commerce.raise('NOT_FOUND', 'user not found', format('No user has id %s.', get_balance.user_id));
	END IF;
	RETURN result;
END
$$;

------------------------------------------------------------------------------
-- Products and stock
------------------------------------------------------------------------------

-- Splits quantity over n buckets as evenly as possible (remainder to the
-- lowest-numbered buckets).
CREATE FUNCTION commerce.split_quantity(quantity integer, n integer)
RETURNS TABLE (bucket integer, share integer)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT b, quantity / n + CASE WHEN b < quantity % n THEN 1 ELSE 0 END
	FROM generate_series(0, n - 1) AS b
$$;

CREATE FUNCTION commerce.create_product(name text, price bigint, stock integer,
	category text DEFAULT NULL, buckets integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	new_id bigint;
	n integer := coalesce(buckets, commerce.default_buckets('stock'));
BEGIN
	IF name IS NULL OR length(name) NOT BETWEEN 1 AND 200 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'name must be 1 to 200 characters');
	END IF;
	IF price IS NULL OR price < 0 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'price must be a non-negative integer');
	END IF;
	IF stock IS NULL OR stock < 0 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'stock must be a non-negative integer');
	END IF;
	IF category IS NOT NULL AND length(category) NOT BETWEEN 1 AND 100 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'category must be 1 to 100 characters');
	END IF;
	IF n NOT BETWEEN 1 AND 1024 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'buckets must be between 1 and 1024');
	END IF;
	INSERT INTO commerce.products (name, category, price)
		VALUES (create_product.name, create_product.category, create_product.price)
		RETURNING id INTO new_id;
	INSERT INTO commerce.stock_buckets (product_id, bucket, quantity)
		SELECT new_id, s.bucket, s.share FROM commerce.split_quantity(stock, n) s;
	RETURN new_id;
END
$$;

-- Locks: every bucket of the product in ascending order (lock order step 5),
-- so the new stock is spread evenly and hot products keep their parallelism.
CREATE FUNCTION commerce.restock(product_id bigint, quantity integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
	total bigint;
BEGIN
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

-- What the product functions return.  A type rather than RETURNS TABLE: a
-- column named like a parameter (category) clashes inside PL/pgSQL.
CREATE TYPE commerce.product_info AS (id bigint, name text, category text, price bigint, stock integer);

CREATE FUNCTION commerce.get_product(product_id bigint)
RETURNS SETOF commerce.product_info
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY
		SELECT p.id, p.name, p.category, p.price,
		       (SELECT sum(sb.quantity) FROM commerce.stock_buckets sb WHERE sb.product_id = p.id)::integer
		FROM commerce.products p WHERE p.id = get_product.product_id;
	IF NOT FOUND THEN
		PERFORM commerce.raise('NOT_FOUND', 'product not found', format('No product has id %s.', get_product.product_id));
	END IF;
END
$$;

-- Keyset pagination: pass the last id of a page as after_id for the next.
CREATE FUNCTION commerce.list_products(category text DEFAULT NULL, keyword text DEFAULT NULL,
	lim integer DEFAULT 20, after_id bigint DEFAULT NULL)
RETURNS SETOF commerce.product_info
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF lim IS NULL OR lim NOT BETWEEN 1 AND 100 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'limit must be between 1 and 100',
			format('limit was %s.', coalesce(lim::text, 'null')));
	END IF;
	IF keyword IS NOT NULL AND length(keyword) > 100 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'keyword must be at most 100 characters');
	END IF;
	RETURN QUERY
		SELECT p.id, p.name, p.category, p.price,
		       (SELECT sum(sb.quantity) FROM commerce.stock_buckets sb WHERE sb.product_id = p.id)::integer
		FROM commerce.products p
		WHERE (list_products.category IS NULL OR p.category = list_products.category)
		  AND (list_products.keyword IS NULL OR
		       strpos(lower(p.name), lower(list_products.keyword)) > 0)
		  AND (list_products.after_id IS NULL OR p.id > list_products.after_id)
		ORDER BY p.id
		LIMIT lim;
END
$$;

-- Gives quantity back to one bucket of a product: an unlocked one when there
-- is one, else bucket hint (waiting for it while holding no other bucket of
-- this product, lock order step 5).  Returns the bucket used.
CREATE FUNCTION commerce.stock_put_back(product_id bigint, quantity integer, hint integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	chosen integer;
BEGIN
	SELECT sb.bucket INTO chosen FROM commerce.stock_buckets sb
	WHERE sb.product_id = stock_put_back.product_id
	ORDER BY sb.bucket = hint DESC, sb.bucket LIMIT 1 FOR UPDATE SKIP LOCKED;
	IF NOT FOUND THEN
		chosen := hint;
	END IF;
	UPDATE commerce.stock_buckets sb SET quantity = sb.quantity + stock_put_back.quantity
	WHERE sb.product_id = stock_put_back.product_id AND sb.bucket = chosen;
	IF NOT FOUND THEN
		-- the bucket layout never shrinks, but be explicit rather than lose stock
		RAISE EXCEPTION 'stock bucket % of product % vanished', chosen, stock_put_back.product_id;
	END IF;
	RETURN chosen;
END
$$;

------------------------------------------------------------------------------
-- Coupons
------------------------------------------------------------------------------

CREATE FUNCTION commerce.create_coupon(code text, discount_type text, discount_value bigint,
	total_quantity integer, valid_from timestamptz DEFAULT now(), valid_until timestamptz DEFAULT NULL,
	min_order_amount bigint DEFAULT 0, max_discount bigint DEFAULT NULL,
	name text DEFAULT NULL, buckets integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	new_id bigint;
	n integer := coalesce(buckets, commerce.default_buckets('coupon'));
BEGIN
	IF code IS NULL OR length(code) NOT BETWEEN 1 AND 64 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'code must be 1 to 64 characters');
	END IF;
	IF discount_type IS NULL OR discount_type NOT IN ('fixed', 'percent') THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'discount_type must be ''fixed'' or ''percent''',
			format('discount_type was %L.', discount_type));
	END IF;
	IF discount_value IS NULL OR discount_value <= 0
	   OR (discount_type = 'percent' AND discount_value > 100) THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'discount_value out of range',
			'A fixed discount must be positive; a percent discount between 1 and 100.');
	END IF;
	IF total_quantity IS NULL OR total_quantity < 0 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'total_quantity must be a non-negative integer');
	END IF;
	IF valid_from IS NULL OR (valid_until IS NOT NULL AND valid_until <= valid_from) THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'valid_until must be after valid_from');
	END IF;
	IF min_order_amount IS NULL OR min_order_amount < 0 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'min_order_amount must be a non-negative integer');
	END IF;
	IF max_discount IS NOT NULL AND max_discount <= 0 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'max_discount must be positive');
	END IF;
	IF n NOT BETWEEN 1 AND 1024 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'buckets must be between 1 and 1024');
	END IF;
	IF EXISTS (SELECT FROM commerce.coupons c WHERE c.code = create_coupon.code) THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'coupon code already exists',
			format('A coupon with code %L exists.', create_coupon.code));
	END IF;
	INSERT INTO commerce.coupons (code, name, discount_type, discount_value, max_discount,
		min_order_amount, total_quantity, valid_from, valid_until)
	VALUES (create_coupon.code, coalesce(create_coupon.name, create_coupon.code),
		create_coupon.discount_type, create_coupon.discount_value, create_coupon.max_discount,
		create_coupon.min_order_amount, create_coupon.total_quantity, create_coupon.valid_from,
		create_coupon.valid_until)
	RETURNING id INTO new_id;
	INSERT INTO commerce.coupon_buckets (coupon_id, bucket, quantity)
		SELECT new_id, s.bucket, s.share FROM commerce.split_quantity(total_quantity, n) s;
	RETURN new_id;
END
$$;

CREATE FUNCTION commerce.user_coupons(user_id bigint)
RETURNS TABLE (issued_coupon_id bigint, coupon_id bigint, code text, name text, status text,
	discount_type text, discount_value bigint, max_discount bigint, min_order_amount bigint,
	valid_until timestamptz, issued_at timestamptz, used_at timestamptz, order_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM commerce.users u WHERE u.id = user_coupons.user_id) THEN
		PERFORM commerce.raise('NOT_FOUND', 'user not found', format('No user has id %s.', user_coupons.user_id));
	END IF;
	RETURN QUERY
		SELECT ic.id, c.id, c.code, c.name, ic.status, c.discount_type, c.discount_value,
		       c.max_discount, c.min_order_amount, c.valid_until, ic.issued_at, ic.used_at, ic.order_id
		FROM commerce.issued_coupons ic JOIN commerce.coupons c ON c.id = ic.coupon_id
		WHERE ic.user_id = user_coupons.user_id
		ORDER BY ic.id;
END
$$;

------------------------------------------------------------------------------
-- Hot paths, in C (extension/coupon.c, extension/stock.c, extension/order.c)
------------------------------------------------------------------------------

CREATE FUNCTION commerce.issue_coupon(user_id bigint, coupon_id bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'pg_commerce_issue_coupon'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION commerce.decrement_stock(product_id bigint, quantity integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'pg_commerce_decrement_stock'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION commerce.place_order(user_id bigint, items jsonb, coupon_id bigint DEFAULT NULL,
	idempotency_key text DEFAULT NULL)
RETURNS TABLE (order_id bigint, status text, total_amount bigint, discount_amount bigint, paid_amount bigint)
AS 'MODULE_PATHNAME', 'pg_commerce_place_order'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Orders
------------------------------------------------------------------------------

-- Locks, in the global order: the order row, the user row, then per item in
-- ascending product id one stock bucket (the one the order took from when it
-- is free, else any free one, else waiting for the original), then the
-- statistics slot of that bucket.  Cancelling twice changes nothing the
-- second time.
CREATE FUNCTION commerce.cancel_order(order_id bigint, user_id bigint)
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

-- A composite type rather than RETURNS TABLE: its order_id column would
-- clash with the parameter of the same name inside PL/pgSQL.
CREATE TYPE commerce.order_details AS (
	order_id bigint, user_id bigint, status text, total_amount bigint,
	discount_amount bigint, paid_amount bigint, coupon_id bigint, issued_coupon_id bigint,
	created_at timestamptz, cancelled_at timestamptz, items jsonb);

CREATE FUNCTION commerce.get_order(order_id bigint)
RETURNS SETOF commerce.order_details
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY
		SELECT o.id, o.user_id, o.status, o.total_amount, o.discount_amount, o.paid_amount,
		       ic.coupon_id, o.issued_coupon_id, o.created_at, o.cancelled_at,
		       (SELECT jsonb_agg(jsonb_build_object(
		                  'product_id', oi.product_id, 'name', p.name, 'quantity', oi.quantity,
		                  'unit_price', oi.unit_price, 'amount', oi.unit_price * oi.quantity)
		               ORDER BY oi.product_id)
		        FROM commerce.order_items oi JOIN commerce.products p ON p.id = oi.product_id
		        WHERE oi.order_id = o.id)
		FROM commerce.orders o LEFT JOIN commerce.issued_coupons ic ON ic.id = o.issued_coupon_id
		WHERE o.id = get_order.order_id;
	IF NOT FOUND THEN
		PERFORM commerce.raise('NOT_FOUND', 'order not found', format('No order has id %s.', get_order.order_id));
	END IF;
END
$$;

------------------------------------------------------------------------------
-- Sales statistics
------------------------------------------------------------------------------

-- Top products by units sold (net of cancellations) in the last `days` days,
-- at hour granularity.
CREATE FUNCTION commerce.popular_products(days integer DEFAULT 3, lim integer DEFAULT 5)
RETURNS TABLE (product_id bigint, name text, quantity_sold bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF days IS NULL OR days NOT BETWEEN 1 AND 365 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'days must be between 1 and 365');
	END IF;
	IF lim IS NULL OR lim NOT BETWEEN 1 AND 100 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'limit must be between 1 and 100');
	END IF;
	RETURN QUERY
		SELECT s.product_id, p.name, sum(s.quantity)::bigint AS sold
		FROM commerce.sales_stats s JOIN commerce.products p ON p.id = s.product_id
		WHERE s.hour >= date_trunc('hour', now() - make_interval(days => popular_products.days))
		GROUP BY s.product_id, p.name
		HAVING sum(s.quantity) > 0
		ORDER BY sold DESC, s.product_id
		LIMIT lim;
END
$$;

------------------------------------------------------------------------------
-- Outbox
------------------------------------------------------------------------------

-- Claims up to `batch` pending events for `lease`; concurrent relays skip
-- each other's rows.  An event whose lease ran out without an ack is claimed
-- again (at-least-once delivery).
CREATE FUNCTION commerce.claim_events(batch integer, lease interval DEFAULT '30 seconds')
RETURNS TABLE (event_id bigint, event_type text, aggregate_id bigint, payload jsonb, created_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF batch IS NULL OR batch NOT BETWEEN 1 AND 10000 THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'batch must be between 1 and 10000');
	END IF;
	IF lease IS NULL OR lease <= interval '0' THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'lease must be positive');
	END IF;
	RETURN QUERY
		WITH claimed AS (
			SELECT e.id FROM commerce.outbox e
			WHERE e.acked_at IS NULL AND (e.claimed_until IS NULL OR e.claimed_until < now())
			ORDER BY e.id
			LIMIT batch
			FOR UPDATE SKIP LOCKED
		)
		UPDATE commerce.outbox e SET claimed_until = now() + lease
		FROM claimed WHERE e.id = claimed.id
		RETURNING e.id, e.event_type, e.aggregate_id, e.payload, e.created_at;
END
$$;

-- Marks events delivered; returns how many were pending.
CREATE FUNCTION commerce.ack_events(ids bigint[])
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	WITH acked AS (
		UPDATE commerce.outbox e SET acked_at = now()
		WHERE e.id = ANY (ids) AND e.acked_at IS NULL
		RETURNING 1
	)
	SELECT count(*)::integer FROM acked
$$;

------------------------------------------------------------------------------
-- Privileges: PUBLIC gets nothing; commerce_api may only execute the API.
------------------------------------------------------------------------------

REVOKE ALL ON SCHEMA commerce FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA commerce FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA commerce FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA commerce FROM PUBLIC;
REVOKE ALL ON TYPE commerce.order_details, commerce.product_info FROM PUBLIC;
GRANT USAGE ON TYPE commerce.order_details, commerce.product_info TO commerce_api;
GRANT USAGE ON SCHEMA commerce TO commerce_api;
GRANT EXECUTE ON FUNCTION
	commerce.error_codes(),
	commerce.create_user(text),
	commerce.charge_balance(bigint, bigint),
	commerce.get_balance(bigint),
	commerce.create_product(text, bigint, integer, text, integer),
	commerce.restock(bigint, integer),
	commerce.get_product(bigint),
	commerce.list_products(text, text, integer, bigint),
	commerce.create_coupon(text, text, bigint, integer, timestamptz, timestamptz, bigint, bigint, text, integer),
	commerce.user_coupons(bigint),
	commerce.issue_coupon(bigint, bigint),
	commerce.decrement_stock(bigint, integer),
	commerce.place_order(bigint, jsonb, bigint, text),
	commerce.cancel_order(bigint, bigint),
	commerce.get_order(bigint),
	commerce.popular_products(integer, integer),
	commerce.claim_events(integer, interval),
	commerce.ack_events(bigint[])
TO commerce_api;
