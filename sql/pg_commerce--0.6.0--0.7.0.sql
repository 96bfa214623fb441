/*
 * pg_commerce 0.6.0 -> 0.7.0
 *
 * Delivery in order per aggregate, housekeeping, and popular products from
 * a rollup (docs/housekeeping.md):
 * - claim_events hands out an event only when every earlier undelivered
 *   event of its aggregate is in the same batch, so two relays never
 *   deliver one order's events out of order; a batch comes back in id order.
 *   New index outbox_aggregate_pending_idx for that check.
 * - release_events(ids) ends a lease at once after a failed delivery, and
 *   outbox_lag() gives the backlog for the relay's metric (commerce_relay;
 *   outbox_lag also commerce_operator).
 * - housekeeping() (commerce_operator) removes, a bounded batch per table
 *   and call, delivered events older than pg_commerce.outbox_retention,
 *   expired idempotency answers and sales statistics older than the longest
 *   window popular_products serves.  New index outbox_acked_idx finds the
 *   delivered events by age.  purge_idempotency_keys now removes at most
 *   pg_commerce.housekeeping_batch answers per call, like housekeeping.
 * - refresh_popular() (commerce_operator) precomputes the ranking of each
 *   window of pg_commerce.popular_windows into popular_refresh and
 *   popular_ranking (dumped with their data, like every table);
 *   popular_products reads it while it is younger than
 *   pg_commerce.popular_max_age, else computes live as before.
 *
 * The two new indexes are built on the whole outbox here, which holds its
 * writers (orders, cancels, coupon issues) for the build: an outbox that
 * 0.6.0 never emptied may take a while, so update at a quiet moment.
 *
 * Bounds written as literals below (365 days, 100 products) are
 * COMMERCE_MAX_POPULAR_DAYS and COMMERCE_MAX_POPULAR_LIMIT of
 * extension/commerce_limits.h; tests/check-limits.py holds them to it.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_commerce UPDATE TO '0.7.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Settings (extension/module.c)
------------------------------------------------------------------------------

-- GUC pg_commerce.outbox_retention
CREATE FUNCTION commerce.outbox_retention()
RETURNS interval
AS 'MODULE_PATHNAME', 'pg_commerce_outbox_retention'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- GUC pg_commerce.housekeeping_batch
CREATE FUNCTION commerce.housekeeping_batch()
RETURNS integer
AS 'MODULE_PATHNAME', 'pg_commerce_housekeeping_batch'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- GUC pg_commerce.popular_windows, parsed: the day counts, ascending
CREATE FUNCTION commerce.popular_windows()
RETURNS integer[]
AS 'MODULE_PATHNAME', 'pg_commerce_popular_windows'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- GUC pg_commerce.popular_max_age
CREATE FUNCTION commerce.popular_max_age()
RETURNS interval
AS 'MODULE_PATHNAME', 'pg_commerce_popular_max_age'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

------------------------------------------------------------------------------
-- Outbox: in order per aggregate
------------------------------------------------------------------------------

-- The undelivered events of one aggregate in id order: claim_events probes
-- it for each event it considers ("is an earlier one of mine still out?").
-- Small: only undelivered rows.
CREATE INDEX outbox_aggregate_pending_idx ON commerce.outbox (aggregate_id, id) WHERE acked_at IS NULL;

-- Delivered events by age, for housekeeping: without it each call would
-- walk every row kept within the retention to find the few past it.  An
-- acknowledgement already updates an indexed column (outbox_pending_idx's
-- predicate), so this adds one index entry to it and nothing to the order's
-- own transaction.
CREATE INDEX outbox_acked_idx ON commerce.outbox (acked_at) WHERE acked_at IS NOT NULL;

-- Claims up to `batch` undelivered events for `lease`, in order per
-- aggregate: an event is claimed only when every earlier undelivered event
-- of its aggregate is claimed with it.  One held by another relay (its lease
-- running), locked by another claim in progress (SKIP LOCKED), or held back
-- itself keeps the later ones back too, until it is acknowledged or its
-- lease runs out.  The batch comes back in id order, the order to deliver
-- it in.  An event whose lease ran out without an ack is claimed again
-- (at-least-once delivery).
--
-- The aggregate is (kind, aggregate_id), the kind being the event type's
-- first word, the rule commerce-relay names topics by: order_placed and
-- order_cancelled are the order's, coupon_issued the issued coupon's.  The check reads
-- "earlier" in the statement's snapshot, which is enough because one
-- aggregate's events are written by transactions that follow each other
-- (cancel_order locks the committed order row), so an earlier event is
-- committed before a later one exists.  Rows a concurrent relay committed
-- after the snapshot only hold more back.
CREATE OR REPLACE FUNCTION commerce.claim_events(batch integer, lease interval DEFAULT '30 seconds')
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
		WITH candidate AS (
			-- free events in id order; those behind a running lease of their
			-- aggregate are left out here already, so that they do not use up
			-- the batch (the final check below would hold them back anyway).
			-- OFFSET 0 keeps each NOT EXISTS a probe of
			-- outbox_aggregate_pending_idx per event: as an anti-join the
			-- planner may scan the whole backlog for it instead.
			SELECT e.id, e.event_type, e.aggregate_id FROM commerce.outbox e
			WHERE e.acked_at IS NULL AND (e.claimed_until IS NULL OR e.claimed_until < now())
			  AND NOT EXISTS (
				SELECT FROM commerce.outbox x
				WHERE x.aggregate_id = e.aggregate_id AND x.id < e.id AND x.acked_at IS NULL
				  AND split_part(x.event_type, '_', 1) = split_part(e.event_type, '_', 1)
				  AND x.claimed_until >= now()
				OFFSET 0)
			ORDER BY e.id
			LIMIT batch
			FOR UPDATE OF e SKIP LOCKED
		), claimable AS (
			-- the locked events none of whose earlier undelivered events of the
			-- same aggregate is outside the locked set
			SELECT c.id FROM candidate c
			WHERE NOT EXISTS (
				SELECT FROM commerce.outbox x
				WHERE x.aggregate_id = c.aggregate_id AND x.id < c.id AND x.acked_at IS NULL
				  AND split_part(x.event_type, '_', 1) = split_part(c.event_type, '_', 1)
				  AND x.id NOT IN (SELECT l.id FROM candidate l)
				OFFSET 0)
		), claimed AS (
			UPDATE commerce.outbox e SET claimed_until = now() + lease
			FROM claimable WHERE e.id = claimable.id
			RETURNING e.id, e.event_type, e.aggregate_id, e.payload, e.created_at
		)
		SELECT k.id, k.event_type, k.aggregate_id, k.payload, k.created_at FROM claimed k ORDER BY k.id;
END
$$;

-- Ends the running lease of claimed, undelivered events now, so that after a
-- failed delivery any relay may claim them at once instead of after the
-- lease; returns how many leases it ended.  The outbox does not record which
-- relay holds a lease, so a relay releases only what it still holds (its
-- batch, before the lease it was given runs out); releasing the whole
-- undelivered rest of a batch keeps the order per aggregate.
CREATE FUNCTION commerce.release_events(ids bigint[])
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	WITH released AS (
		UPDATE commerce.outbox e SET claimed_until = NULL
		WHERE e.id = ANY (ids) AND e.acked_at IS NULL AND e.claimed_until >= now()
		RETURNING 1
	)
	SELECT count(*)::integer FROM released
$$;

-- Extends the running lease of claimed, undelivered events to `lease` from
-- now, for a relay still waiting for Kafka (a broker down: the idempotent
-- producer retries the same messages until it is back, which is what keeps
-- them from being duplicated); returns how many leases it extended.  An
-- event whose lease already ran out is not extended: another relay may hold
-- it now.
CREATE FUNCTION commerce.extend_events(ids bigint[], lease interval)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
BEGIN
	IF lease IS NULL OR lease <= interval '0' THEN
		PERFORM commerce.raise('INVALID_ARGUMENT', 'lease must be positive');
	END IF;
	UPDATE commerce.outbox e SET claimed_until = now() + lease
	WHERE e.id = ANY (ids) AND e.acked_at IS NULL AND e.claimed_until >= now();
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- The backlog, for the relay's lag metric: how many events are undelivered
-- and when the first of them (the lowest id, the one delivery waits on) was
-- written.  Cheap at any backlog: it counts at most 10,000 undelivered
-- events along outbox_pending_idx (about 1.5 ms); beyond them, pending
-- counts every id from the next undelivered event to the last one (two
-- index probes; an upper bound that is exact while delivery goes in id
-- order, ids lost to rolled-back transactions aside) and pending_exact is
-- false.  An exact count costs a walk of the whole backlog (170 ms for
-- 1,000,000, docs/housekeeping.md).
CREATE FUNCTION commerce.outbox_lag()
RETURNS TABLE (pending bigint, oldest_pending_at timestamptz, pending_exact boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	WITH head AS (
		SELECT e.id FROM commerce.outbox e WHERE e.acked_at IS NULL ORDER BY e.id LIMIT 10001
	), counted AS (
		SELECT count(*) AS n, min(h.id) AS first_id, max(h.id) AS last_id FROM head h
	)
	SELECT CASE WHEN c.n <= 10000 THEN c.n
	            ELSE c.n + (SELECT max(e.id) FROM commerce.outbox e WHERE e.acked_at IS NULL) - c.last_id
	       END,
	       (SELECT e.created_at FROM commerce.outbox e WHERE e.id = c.first_id),
	       c.n <= 10000
	FROM counted c
$$;

------------------------------------------------------------------------------
-- Popular products from a rollup
------------------------------------------------------------------------------

-- One row per precomputed window: the ranking of popular_ranking for `days`
-- covers sales_stats from window_start on, as of refreshed_at.  A window
-- with no sale has its row here and no ranking rows, so "fresh and empty"
-- differs from "not precomputed".
CREATE TABLE commerce.popular_refresh (
	days          integer PRIMARY KEY CHECK (days BETWEEN 1 AND 365),
	window_start  timestamptz NOT NULL,
	refreshed_at  timestamptz NOT NULL
);

-- The top 100 products of each precomputed window (the most popular_products
-- returns), by units sold net of cancellations, ties by product id; only
-- products that sold more than they had cancelled, as the live answer.
-- No foreign keys, for the reason given at order_items.
CREATE TABLE commerce.popular_ranking (
	days        integer NOT NULL,
	rank        integer NOT NULL CHECK (rank BETWEEN 1 AND 100),
	product_id  bigint NOT NULL,
	sold        bigint NOT NULL CHECK (sold > 0),
	PRIMARY KEY (days, rank)
);

-- Dumped with their data like every table of the schema (see "Backups"):
-- the two are derived and refresh_popular rebuilds them, but pg_dump reads
-- them in the same snapshot as sales_stats, so a restored ranking is as
-- right as the original was (and ignored once older than
-- pg_commerce.popular_max_age), and a restore compares table for table.
SELECT pg_catalog.pg_extension_config_dump('commerce.popular_refresh', '');
SELECT pg_catalog.pg_extension_config_dump('commerce.popular_ranking', '');

-- Recomputes the ranking of every window of pg_commerce.popular_windows in
-- one pass over sales_stats of the longest one, replacing what was there
-- (a window dropped from the setting goes with it).  One refresh at a time:
-- the table lock conflicts with itself and with no reader, so
-- popular_products goes on reading the previous ranking until this commits.
-- Returns each window with the number of products ranked.  Scheduled every
-- minute (ops/sql/schedule-housekeeping.sql); what it costs is in
-- docs/housekeeping.md.
CREATE FUNCTION commerce.refresh_popular()
RETURNS TABLE (window_days integer, ranked integer, window_from timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	starts timestamptz[];		-- the windows' first hours, ascending (longest window first)
BEGIN
	LOCK TABLE commerce.popular_refresh IN SHARE ROW EXCLUSIVE MODE;
	DELETE FROM commerce.popular_ranking;
	DELETE FROM commerce.popular_refresh;
	-- the same window bounds as popular_products' live answer
	INSERT INTO commerce.popular_refresh (days, window_start, refreshed_at)
		SELECT d, date_trunc('hour', now() - make_interval(days => d)), now()
		FROM unnest(commerce.popular_windows()) AS d;
	SELECT array_agg(w.window_start ORDER BY w.window_start) INTO starts FROM commerce.popular_refresh w;
	IF starts IS NOT NULL THEN
		INSERT INTO commerce.popular_ranking (days, rank, product_id, sold)
			WITH bands AS (
				-- the one pass: each row since the longest window began falls
				-- in one band between consecutive window starts (band j: from
				-- starts[j] to starts[j + 1]), summed per product and band, so
				-- the aggregate has products x windows groups, not one per hour
				SELECT s.product_id, pg_catalog.width_bucket(s.hour, starts) AS band, sum(s.quantity) AS sold
				FROM commerce.sales_stats s
				WHERE s.hour >= starts[1]
				GROUP BY 1, 2
			), totals AS (
				-- the window that starts at starts[j] covers bands j and later
				SELECT w.days, b.product_id, sum(b.sold) AS sold
				FROM commerce.popular_refresh w
				JOIN bands b ON b.band >= pg_catalog.array_position(starts, w.window_start)
				GROUP BY w.days, b.product_id
				HAVING sum(b.sold) > 0
			), in_order AS (
				SELECT t.days, t.product_id, t.sold,
				       row_number() OVER (PARTITION BY t.days ORDER BY t.sold DESC, t.product_id) AS rank
				FROM totals t JOIN commerce.products p ON p.id = t.product_id
			)
			SELECT r.days, r.rank, r.product_id, r.sold FROM in_order r WHERE r.rank <= 100;
	END IF;
	RETURN QUERY
		SELECT w.days, count(k.rank)::integer, w.window_start
		FROM commerce.popular_refresh w LEFT JOIN commerce.popular_ranking k ON k.days = w.days
		GROUP BY w.days, w.window_start
		ORDER BY w.days;
END
$$;

-- Top products by units sold (net of cancellations) in the last `days` days,
-- at hour granularity.  When refresh_popular has ranked this window within
-- pg_commerce.popular_max_age, the answer is that ranking (exact for the
-- window as of the refresh, at a cost that does not grow with the sales);
-- otherwise (another day count, or the scheduler stopped) it is computed
-- from sales_stats as before.  Read-only either way: standbys serve it.
CREATE OR REPLACE FUNCTION commerce.popular_products(days integer DEFAULT 3, lim integer DEFAULT 5)
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
	IF EXISTS (SELECT FROM commerce.popular_refresh w
	           WHERE w.days = popular_products.days
	             AND w.refreshed_at >= now() - commerce.popular_max_age()) THEN
		-- products joined for their current name
		RETURN QUERY
			SELECT k.product_id, p.name, k.sold
			FROM commerce.popular_ranking k JOIN commerce.products p ON p.id = k.product_id
			WHERE k.days = popular_products.days AND k.rank <= lim
			ORDER BY k.rank;
		RETURN;
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
-- Housekeeping
------------------------------------------------------------------------------

-- Deletes up to pg_commerce.housekeeping_batch answers older than
-- pg_commerce.idempotency_ttl, oldest first; returns how many.  Expired
-- answers are ignored anyway, the purge only gives the space back; a call
-- that returns the batch size left more behind.  Answers locked by a
-- request that reuses its expired key are skipped, not waited for.
CREATE OR REPLACE FUNCTION commerce.purge_idempotency_keys()
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	WITH gone AS (
		DELETE FROM commerce.idempotency_keys k
		WHERE (k.user_id, k.key) IN (
			SELECT o.user_id, o.key FROM commerce.idempotency_keys o
			WHERE o.created_at <= now() - commerce.idempotency_ttl()
			ORDER BY o.created_at
			LIMIT commerce.housekeeping_batch()
			FOR UPDATE SKIP LOCKED)
		RETURNING 1
	)
	SELECT count(*) FROM gone
$$;

-- Removes what the shop no longer needs, at most pg_commerce.housekeeping_batch
-- rows per table per call, so that one call is a short transaction whose
-- row locks nobody waits for (rows another transaction holds are skipped):
--   outbox            events acknowledged longer ago than
--                     pg_commerce.outbox_retention (undelivered events,
--                     acked_at NULL, never);
--   idempotency_keys  answers older than pg_commerce.idempotency_ttl
--                     (purge_idempotency_keys);
--   sales_stats       hours before the longest window popular_products
--                     serves (365 days), which no answer can include.
-- The popular-products rollup keeps nothing outside its windows (each
-- refresh replaces it) and needs no removal.  Returns one row per table:
-- how many rows went, and whether the batch was full (more = true: call
-- again, or let the next scheduled call go on).
CREATE FUNCTION commerce.housekeeping()
RETURNS TABLE (table_name text, removed bigint, more boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	batch integer := commerce.housekeeping_batch();
	n bigint;
BEGIN
	WITH gone AS (
		DELETE FROM commerce.outbox e
		WHERE e.id IN (
			SELECT o.id FROM commerce.outbox o
			WHERE o.acked_at < now() - commerce.outbox_retention()
			ORDER BY o.acked_at
			LIMIT batch
			FOR UPDATE SKIP LOCKED)
		RETURNING 1
	)
	SELECT count(*) INTO n FROM gone;
	RETURN QUERY SELECT 'outbox'::text, n, n >= batch;

	n := commerce.purge_idempotency_keys();
	RETURN QUERY SELECT 'idempotency_keys'::text, n, n >= batch;

	WITH gone AS (
		DELETE FROM commerce.sales_stats s
		WHERE (s.hour, s.product_id, s.slot) IN (
			SELECT o.hour, o.product_id, o.slot FROM commerce.sales_stats o
			WHERE o.hour < date_trunc('hour', now() - make_interval(days => 365))
			ORDER BY o.hour
			LIMIT batch
			FOR UPDATE SKIP LOCKED)
		RETURNING 1
	)
	SELECT count(*) INTO n FROM gone;
	RETURN QUERY SELECT 'sales_stats'::text, n, n >= batch;
END
$$;

-- What a scheduler calls: housekeeping() again and again, each batch in a
-- transaction of its own (COMMIT between them), until no table has more to
-- remove or max_seconds have passed.  One batch a minute (50,000 rows) is
-- less than a shop at capacity writes (about 2,000 orders a second on two
-- cores); this keeps the tables bounded at any rate the database sustains,
-- while each transaction stays one batch long.  A procedure that commits
-- cannot be SECURITY DEFINER or carry a SET clause, so this one is neither
-- and does nothing but call housekeeping() (SECURITY DEFINER, search_path
-- pinned), schema-qualified; it must be CALLed outside a transaction block.
CREATE PROCEDURE commerce.run_housekeeping(max_seconds integer DEFAULT 50)
LANGUAGE plpgsql
AS $$
DECLARE
	deadline timestamptz := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => max_seconds);
	again boolean := true;
BEGIN
	WHILE again AND pg_catalog.clock_timestamp() < deadline LOOP
		SELECT pg_catalog.bool_or(h.more) INTO again FROM commerce.housekeeping() h;
		COMMIT;
	END LOOP;
END
$$;

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

REVOKE ALL ON TABLE commerce.popular_refresh, commerce.popular_ranking FROM PUBLIC;
REVOKE ALL ON FUNCTION commerce.outbox_retention(), commerce.housekeeping_batch(),
	commerce.popular_windows(), commerce.popular_max_age(),
	commerce.release_events(bigint[]), commerce.extend_events(bigint[], interval), commerce.outbox_lag(),
	commerce.refresh_popular(), commerce.housekeeping() FROM PUBLIC;
REVOKE ALL ON PROCEDURE commerce.run_housekeeping(integer) FROM PUBLIC;
-- the relay: ending its leases after a failure, and its lag metric
GRANT EXECUTE ON FUNCTION commerce.release_events(bigint[]), commerce.extend_events(bigint[], interval),
	commerce.outbox_lag() TO commerce_relay;
-- operators: the lag for their own alerts, and the scheduled maintenance
GRANT EXECUTE ON FUNCTION commerce.outbox_lag(), commerce.refresh_popular(), commerce.housekeeping()
	TO commerce_operator;
GRANT EXECUTE ON PROCEDURE commerce.run_housekeeping(integer) TO commerce_operator;
