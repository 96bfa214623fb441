/*
 * pg_commerce install script (the whole current version).
 *
 * The Makefile copies this file to pg_commerce--<version>.sql; upgrade
 * scripts live beside it as pg_commerce--<from>--<to>.sql.
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
 *   4. an issued coupon row    (only ever locked by a transaction that holds
 *                               its owner's user row, so where it comes
 *                               relative to 5 and 6 cannot close a cycle;
 *                               place_order locks it in its last statement)
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

-- The three roles of the API, each allowed to execute its own functions and
-- nothing else (see "Privileges" at the end):
--   commerce_api       the customer API, as commerce-http uses it
--   commerce_operator  the shop's operators: catalog, stock, coupons
--   commerce_relay     the outbox relay: claims and acknowledges events
-- Roles are cluster-wide, so an earlier installation (or another database)
-- may have created them already.
DO $do$
DECLARE
	role_name text;
BEGIN
	FOREACH role_name IN ARRAY ARRAY['commerce_api', 'commerce_operator', 'commerce_relay'] LOOP
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
		END IF;
	END LOOP;
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
--
-- fillfactor 10 (both bucket tables): a bucket row is updated by every
-- taker, so each page keeps room for its new versions (HOT updates), a page
-- is pruned as soon as it is 10% full, which keeps the chains of dead
-- versions that every reader walks short, and the buckets of one id spread
-- over several pages instead of sharing one page's lock.  Measured on the
-- 10,000-user / 1,000-coupon flood: refusals of the just sold-out coupon
-- 27k/s -> 37k/s, the whole flood 0.61 s -> 0.52 s.
CREATE TABLE commerce.stock_buckets (
	product_id  bigint NOT NULL REFERENCES commerce.products(id),
	bucket      integer NOT NULL CHECK (bucket >= 0),
	quantity    integer NOT NULL CHECK (quantity >= 0),
	PRIMARY KEY (product_id, bucket)
) WITH (fillfactor = 10);

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

-- A coupon's remaining quantity is the sum of its buckets (fillfactor: see
-- stock_buckets).
CREATE TABLE commerce.coupon_buckets (
	coupon_id   bigint NOT NULL REFERENCES commerce.coupons(id),
	bucket      integer NOT NULL CHECK (bucket >= 0),
	quantity    integer NOT NULL CHECK (quantity >= 0),
	PRIMARY KEY (coupon_id, bucket)
) WITH (fillfactor = 10);

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
	-- the paid order that used it.  No foreign key: orders.issued_coupon_id
	-- points the other way, and a cycle of foreign keys makes every logical
	-- backup unrestorable (pg_restore fills extension tables one at a time,
	-- with their constraints already in place; see "Backups" below).
	-- tests/invariants.sql checks that a used coupon's order exists, is paid
	-- and names it.
	order_id    bigint,
	issued_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	used_at     timestamptz,
	-- at most one per user per coupon: the last guard behind the advisory lock.
	-- Named here (the name PostgreSQL would give it, so that installs and
	-- upgrades agree) because extension/key_lookup.c reads through its index
	-- by that name, as it does the primary keys.
	CONSTRAINT issued_coupons_coupon_id_user_id_key UNIQUE (coupon_id, user_id),
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

-- The first final answer (status and body, 4xx included) of each request
-- sent with an Idempotency-Key through commerce.keyed_call or operator_call,
-- stored in the same transaction as the request's effect (a keyed order also
-- keeps its key in orders.idempotency_key).  No foreign key on user_id: a
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

------------------------------------------------------------------------------
-- Backups
------------------------------------------------------------------------------

-- The tables above are members of the extension, and pg_dump dumps the
-- contents of a member table only when it is marked as configuration: without
-- these calls a logical backup restores the schema and no shop data at all.
-- The identity sequences are marked too, so that a restored shop hands out
-- ids after the restored ones.  Every table and sequence of schema commerce
-- must be listed (tests/pgtap/01_schema.sql checks that none is missing).
SELECT pg_catalog.pg_extension_config_dump('commerce.users', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.users_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.wallet_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.wallet_ledger_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.products', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.products_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.stock_buckets', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.coupons', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.coupons_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.coupon_buckets', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.orders', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.orders_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.order_items', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.issued_coupons', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.issued_coupons_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.payments', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.payments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.sales_stats', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.idempotency_keys', '');

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

-- The wallet ceiling in force (GUC pg_commerce.max_balance, superuser-set).
CREATE FUNCTION commerce.max_balance()
RETURNS bigint
AS 'MODULE_PATHNAME', 'pg_commerce_max_balance'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- How long an Idempotency-Key's answer is kept (GUC pg_commerce.idempotency_ttl).
CREATE FUNCTION commerce.idempotency_ttl()
RETURNS interval
AS 'MODULE_PATHNAME', 'pg_commerce_idempotency_ttl'
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

-- Raises READ_COMMITTED_REQUIRED unless the transaction runs at READ
-- COMMITTED; the functions that take buckets call it first (the C ones call
-- the same C code directly).
CREATE FUNCTION commerce.require_read_committed(function_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'pg_commerce_require_read_committed_sql'
LANGUAGE C VOLATILE STRICT;

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

-- A composite type rather than RETURNS TABLE: its order_id column would
-- clash with the parameter of the same name inside PL/pgSQL.
CREATE TYPE commerce.order_details AS (
	order_id bigint, user_id bigint, status text, total_amount bigint,
	discount_amount bigint, paid_amount bigint, coupon_id bigint, issued_coupon_id bigint,
	created_at timestamptz, cancelled_at timestamptz, items jsonb);

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

CREATE FUNCTION commerce.get_order(order_id bigint)
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

------------------------------------------------------------------------------
-- Sales statistics
------------------------------------------------------------------------------

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
-- Idempotency: keyed calls, customer and operator
------------------------------------------------------------------------------

-- Takes the advisory lock of (user, key), the same one place_order takes for
-- its key (lock order step 1): a second request with the key waits for the
-- first to commit or roll back, then sees its answer.
CREATE FUNCTION commerce.lock_idempotency_key(user_id bigint, key text)
RETURNS void
AS 'MODULE_PATHNAME', 'pg_commerce_lock_idempotency_key'
LANGUAGE C VOLATILE STRICT;

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
CREATE FUNCTION commerce.keyed_call(user_id bigint, key text, operation text, args jsonb)
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

------------------------------------------------------------------------------
-- Privileges: PUBLIC gets nothing; each role may execute its functions only.
------------------------------------------------------------------------------

-- No role gets any table, sequence or internal helper: the functions are
-- SECURITY DEFINER and are the only way in.  Login roles are granted one of
-- the three (docs/security.md), e.g. commerce-http's role commerce_api only,
-- so that a daemon taken over can neither change the catalog nor hide
-- events from the data platform.
REVOKE ALL ON SCHEMA commerce FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA commerce FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA commerce FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA commerce FROM PUBLIC;
REVOKE ALL ON TYPE commerce.order_details, commerce.product_info FROM PUBLIC;
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
	commerce.issue_coupon_by_code(bigint, text),
	commerce.place_order(bigint, jsonb, bigint, text),
	commerce.cancel_order(bigint, bigint),
	commerce.get_order(bigint),
	commerce.user_orders(bigint, integer, bigint),
	commerce.popular_products(integer, integer),
	commerce.keyed_call(bigint, text, text, jsonb)
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
	commerce.get_coupon(bigint),
	commerce.get_order(bigint),
	commerce.user_orders(bigint, integer, bigint),
	commerce.popular_products(integer, integer),
	commerce.operator_call(bigint, text, text, jsonb),
	commerce.purge_idempotency_keys()
TO commerce_operator;

-- The outbox relay: taking events with a lease and acknowledging them.
GRANT EXECUTE ON FUNCTION
	commerce.claim_events(integer, interval),
	commerce.ack_events(bigint[])
TO commerce_relay;
