/*
 * Fixtures of scripts/bench-sql.sh, in schema `bench` beside the extension.
 *
 * Bulk fixture rows (users, wallets, pre-issued coupons) are written into
 * commerce's tables directly: going through the API for 200,000 users would
 * take longer than the benchmark.  The runs themselves only call the API.
 *
 * The naive design is what the issue's bar compares against: one row per
 * coupon / product that every caller updates.
 */
\set ON_ERROR_STOP 1
CREATE SCHEMA bench;

-- the machine's limits: a one-row INSERT commit
CREATE TABLE bench.sink (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	v integer NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- users 1..200000, each with a wallet of 10^9 (balance = its one ledger row)
INSERT INTO commerce.users (name, balance)
	SELECT 'bench-' || g, 1000000000 FROM generate_series(1, 200000) g;
INSERT INTO commerce.wallet_ledger (user_id, amount, balance_after, reason)
	SELECT id, balance, balance, 'charge' FROM commerce.users;

-- each case draws distinct users from this sequence (restarted per case)
CREATE SEQUENCE bench.uid;

-- the naive single-row design
CREATE TABLE bench.naive_coupon (
	id bigint PRIMARY KEY,
	total integer NOT NULL,
	issued integer NOT NULL DEFAULT 0 CHECK (issued <= total)
);
CREATE TABLE bench.naive_issued (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	coupon_id bigint NOT NULL REFERENCES bench.naive_coupon(id),
	user_id bigint NOT NULL,
	issued_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (coupon_id, user_id)
);
CREATE TABLE bench.naive_stock (
	id bigint PRIMARY KEY,
	stock integer NOT NULL CHECK (stock >= 0)
);

CREATE FUNCTION bench.naive_issue(user_id bigint, coupon_id bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	issued_id bigint;
BEGIN
	UPDATE bench.naive_coupon c SET issued = c.issued + 1
	WHERE c.id = naive_issue.coupon_id AND c.issued < c.total;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'coupon sold out' USING ERRCODE = 'PC410';
	END IF;
	INSERT INTO bench.naive_issued (coupon_id, user_id)
		VALUES (naive_issue.coupon_id, naive_issue.user_id) RETURNING id INTO issued_id;
	RETURN issued_id;
END
$$;

CREATE FUNCTION bench.naive_take(product_id bigint)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	left_over integer;
BEGIN
	UPDATE bench.naive_stock s SET stock = s.stock - 1
	WHERE s.id = naive_take.product_id AND s.stock >= 1 RETURNING s.stock INTO left_over;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'out of stock' USING ERRCODE = 'PC409';
	END IF;
	RETURN left_over;
END
$$;

-- The "wrapped" form of the cases (scripts/bench/wrapped_*.sql, run under
-- pgbench): a refusal is an answer (false), not a failed transaction.  Both
-- designs go through the same kind of wrapper, so both pay for its
-- subtransaction.  The "bare" form calls the functions above directly
-- (scripts/bench/{issue,naive_issue,take,naive_take,order_one}.sql), its
-- refusals errors to the client, under scripts/bench/calls.c.
CREATE FUNCTION bench.flood_issue(user_id bigint, coupon_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM commerce.issue_coupon(user_id, coupon_id);
	RETURN true;
EXCEPTION WHEN SQLSTATE 'PC410' THEN
	RETURN false;
END
$$;
CREATE FUNCTION bench.flood_naive_issue(user_id bigint, coupon_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM bench.naive_issue(user_id, coupon_id);
	RETURN true;
EXCEPTION WHEN SQLSTATE 'PC410' THEN
	RETURN false;
END
$$;
CREATE FUNCTION bench.flood_take(product_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM commerce.decrement_stock(product_id, 1);
	RETURN true;
EXCEPTION WHEN SQLSTATE 'PC409' THEN
	RETURN false;
END
$$;
CREATE FUNCTION bench.flood_naive_take(product_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM bench.naive_take(product_id);
	RETURN true;
EXCEPTION WHEN SQLSTATE 'PC409' THEN
	RETURN false;
END
$$;
CREATE FUNCTION bench.flood_order(user_id bigint, product_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM commerce.place_order(user_id,
		jsonb_build_array(jsonb_build_object('product_id', product_id, 'quantity', 1)));
	RETURN true;
EXCEPTION WHEN SQLSTATE 'PC409' THEN
	RETURN false;
END
$$;

-- The floor of a refusal: the cheapest call that answers with an error
-- (bare) or catches one (wrapped), with the same nextval as the cases.  No
-- design's refusal can be answered faster on this machine.
CREATE FUNCTION bench.floor_wrapped(user_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 / (user_id * 0);
	RETURN true;
EXCEPTION WHEN division_by_zero THEN
	RETURN false;
END
$$;

-- Wait events of the pgbench backends (and calls', which connect as
-- application_name pgbench), sampled every 100 ms until no pgbench backend
-- is left (after a start-up grace of 5 s).  A procedure that
-- commits each sample, so it holds back no snapshot during the run.
CREATE TABLE bench.wait_samples (run text NOT NULL, wait text NOT NULL, backends integer NOT NULL);
CREATE PROCEDURE bench.sample_waits(run text)
LANGUAGE plpgsql AS $$
DECLARE
	started timestamptz := clock_timestamp();
BEGIN
	LOOP
		INSERT INTO bench.wait_samples
			SELECT run, coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*)
			FROM pg_stat_activity
			WHERE application_name = 'pgbench' AND state = 'active'
			GROUP BY 2;
		COMMIT;
		EXIT WHEN clock_timestamp() > started + interval '5 s'
			AND NOT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'pgbench');
		EXIT WHEN clock_timestamp() > started + interval '10 min';
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$$;
