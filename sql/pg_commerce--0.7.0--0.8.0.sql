/*
 * pg_commerce 0.7.0 -> 0.8.0
 *
 * Sold-out hints (extension/sold_out_hint.c, docs/design.md "Sold-out
 * hints"): with pg_commerce in shared_preload_libraries, a product or coupon
 * seen sold out is noted in shared memory (pg_commerce.sold_out_hints
 * slots), and refusing it reads no bucket.  Without the preload nothing
 * changes.
 * - The trigger sold_out_hint_give_back on both bucket tables clears the
 *   hint of anything that may get units again (a raised quantity: restock,
 *   cancel, a DBA's UPDATE; a bucket inserted, deleted or moved; TRUNCATE)
 *   before the change can commit.  ENABLE ALWAYS: it also fires where
 *   session_replication_role = replica (logical replication, some restore
 *   tools).  The WHEN clause keeps it off the takes, which only lower
 *   quantities.
 * - sold_out_hints() lists this database's hints and
 *   sold_out_hints_active() says whether the server keeps any (both
 *   commerce_operator); forget_sold_out_hints() clears them after a change
 *   made with the trigger disabled (pg_restore --disable-triggers), superuser.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_commerce UPDATE TO '0.8.0'" to load this file. \quit

------------------------------------------------------------------------------
-- The give-back trigger
------------------------------------------------------------------------------

-- Argument: the bucket table's key column (bigint).
CREATE FUNCTION commerce.sold_out_hint_give_back()
RETURNS trigger
AS 'MODULE_PATHNAME', 'pg_commerce_sold_out_hint_give_back'
LANGUAGE C;

CREATE TRIGGER stock_buckets_give_back
	AFTER UPDATE ON commerce.stock_buckets
	FOR EACH ROW
	WHEN (NEW.quantity > OLD.quantity OR NEW.product_id <> OLD.product_id)
	EXECUTE FUNCTION commerce.sold_out_hint_give_back('product_id');
CREATE TRIGGER stock_buckets_give_back_rows
	AFTER INSERT OR DELETE ON commerce.stock_buckets
	FOR EACH ROW
	EXECUTE FUNCTION commerce.sold_out_hint_give_back('product_id');
CREATE TRIGGER stock_buckets_give_back_truncate
	AFTER TRUNCATE ON commerce.stock_buckets
	FOR EACH STATEMENT
	EXECUTE FUNCTION commerce.sold_out_hint_give_back('product_id');

CREATE TRIGGER coupon_buckets_give_back
	AFTER UPDATE ON commerce.coupon_buckets
	FOR EACH ROW
	WHEN (NEW.quantity > OLD.quantity OR NEW.coupon_id <> OLD.coupon_id)
	EXECUTE FUNCTION commerce.sold_out_hint_give_back('coupon_id');
CREATE TRIGGER coupon_buckets_give_back_rows
	AFTER INSERT OR DELETE ON commerce.coupon_buckets
	FOR EACH ROW
	EXECUTE FUNCTION commerce.sold_out_hint_give_back('coupon_id');
CREATE TRIGGER coupon_buckets_give_back_truncate
	AFTER TRUNCATE ON commerce.coupon_buckets
	FOR EACH STATEMENT
	EXECUTE FUNCTION commerce.sold_out_hint_give_back('coupon_id');

ALTER TABLE commerce.stock_buckets ENABLE ALWAYS TRIGGER stock_buckets_give_back;
ALTER TABLE commerce.stock_buckets ENABLE ALWAYS TRIGGER stock_buckets_give_back_rows;
ALTER TABLE commerce.stock_buckets ENABLE ALWAYS TRIGGER stock_buckets_give_back_truncate;
ALTER TABLE commerce.coupon_buckets ENABLE ALWAYS TRIGGER coupon_buckets_give_back;
ALTER TABLE commerce.coupon_buckets ENABLE ALWAYS TRIGGER coupon_buckets_give_back_rows;
ALTER TABLE commerce.coupon_buckets ENABLE ALWAYS TRIGGER coupon_buckets_give_back_truncate;

------------------------------------------------------------------------------
-- Looking at the hints
------------------------------------------------------------------------------

-- kind 'stock' (id = product) or 'coupon' (id = coupon)
-- STABLE like PostgreSQL's own views of shared state (pg_stat_get_activity):
-- one statement reads them once
CREATE FUNCTION commerce.sold_out_hints()
RETURNS TABLE (kind text, id bigint)
AS 'MODULE_PATHNAME', 'pg_commerce_sold_out_hints'
LANGUAGE C STABLE STRICT;

CREATE FUNCTION commerce.sold_out_hints_active()
RETURNS boolean
AS 'MODULE_PATHNAME', 'pg_commerce_sold_out_hints_active'
LANGUAGE C STABLE STRICT;

-- returns how many hints of this database it cleared
CREATE FUNCTION commerce.forget_sold_out_hints()
RETURNS integer
AS 'MODULE_PATHNAME', 'pg_commerce_forget_sold_out_hints'
LANGUAGE C VOLATILE STRICT;

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION commerce.sold_out_hint_give_back(), commerce.sold_out_hints(),
	commerce.sold_out_hints_active(), commerce.forget_sold_out_hints() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce.sold_out_hints(), commerce.sold_out_hints_active()
	TO commerce_operator;
