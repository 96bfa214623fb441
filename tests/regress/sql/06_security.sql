-- Privileges: PUBLIC gets nothing; commerce_api may only execute the API.
\set SHOW_CONTEXT never

CREATE ROLE regress_app LOGIN IN ROLE commerce_api;
CREATE ROLE regress_nobody LOGIN;
SET ROLE regress_app;
SELECT commerce.get_balance(1) > 0 AS can_call;
SELECT count(*) FROM commerce.users;
UPDATE commerce.users SET balance = 1;
SELECT commerce.raise('NOT_FOUND', 'x');
RESET ROLE;
SET ROLE regress_nobody;
SELECT commerce.get_balance(1);
RESET ROLE;

-- every function that writes is SECURITY DEFINER, and every SECURITY DEFINER
-- function pins search_path
SELECT p.proname FROM pg_proc p
WHERE p.pronamespace = 'commerce'::regnamespace AND p.prosecdef
  AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
ORDER BY 1;
SELECT p.proname, p.prosecdef, p.provolatile FROM pg_proc p
WHERE p.pronamespace = 'commerce'::regnamespace
ORDER BY 1;
-- each role runs its own functions only: the customer API cannot change the
-- catalog, touch the outbox or run the housekeeping, the operator cannot
-- order or claim, the relay can only claim, acknowledge, release and read
-- the backlog
CREATE ROLE regress_operator LOGIN IN ROLE commerce_operator;
CREATE ROLE regress_relay LOGIN IN ROLE commerce_relay;
SET ROLE regress_app;
SELECT commerce.create_product('not-by-api', 100, 1);
SELECT commerce.restock(1, 1);
SELECT commerce.decrement_stock(1, 1);
SELECT commerce.create_coupon('NOT-BY-API', 'fixed', 100, 1);
SELECT * FROM commerce.claim_events(1);
SELECT commerce.ack_events(ARRAY[1::bigint]);
SELECT commerce.release_events(ARRAY[1::bigint]);
SELECT * FROM commerce.outbox_lag();
SELECT * FROM commerce.housekeeping();
SELECT * FROM commerce.refresh_popular();
RESET ROLE;
SET ROLE regress_operator;
SELECT commerce.create_product('by-operator', 100, 1) > 0 AS operator_creates;
SELECT commerce.restock(1, 1) > 0 AS operator_restocks;
SELECT * FROM commerce.place_order(1, '[{"product_id": 1, "quantity": 1}]');
SELECT commerce.charge_balance(1, 1);
SELECT * FROM commerce.claim_events(1);
SELECT commerce.release_events(ARRAY[1::bigint]);
SELECT pending >= 0 AS operator_reads_lag FROM commerce.outbox_lag();
SELECT count(*) AS operator_housekeeps FROM commerce.housekeeping();
SELECT count(*) >= 0 AS operator_refreshes FROM commerce.refresh_popular();
RESET ROLE;
SET ROLE regress_relay;
SELECT count(*) >= 0 AS relay_claims FROM commerce.claim_events(1, '1 second');
SELECT commerce.ack_events(ARRAY[]::bigint[]) AS relay_acks;
SELECT commerce.release_events(ARRAY[]::bigint[]) AS relay_releases;
SELECT pending >= 0 AS relay_reads_lag FROM commerce.outbox_lag();
SELECT * FROM commerce.housekeeping();
SELECT commerce.get_balance(1);
SELECT commerce.create_product('not-by-relay', 100, 1);
RESET ROLE;

-- only a superuser sets the wallet ceiling: an API session cannot raise its own
SET ROLE regress_app;
SET pg_commerce.max_balance = '9223372036854775807';
RESET ROLE;

-- advisory locks: by default any role can take the key an order waits on;
-- ops/sql/restrict-advisory-locks.sql takes that away, and the extension's
-- own locks (taken in C) keep working
SET ROLE regress_nobody;
SELECT pg_catalog.pg_try_advisory_xact_lock(1) AS anyone_can_lock;
RESET ROLE;
-- (pg_regress feeds psql on stdin from the top directory, so \i is relative to it)
\i ops/sql/restrict-advisory-locks.sql
SET ROLE regress_nobody;
SELECT pg_catalog.pg_advisory_xact_lock(1);
SELECT pg_catalog.pg_try_advisory_lock_shared(1, 2);
RESET ROLE;
SELECT commerce.create_coupon('AFTER-REVOKE', 'fixed', 100, 5) AS after_revoke_coupon \gset
SET ROLE regress_app;
SELECT status FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 1}]', NULL, 'after-revoke');
SELECT commerce.issue_coupon(2, :after_revoke_coupon) > 0 AS issued_after_revoke;
RESET ROLE;
SELECT count(*) AS advisory_lock_functions_left_to_public FROM pg_proc p
WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname ~ 'advisory_.*lock'
  AND p.proname !~ 'unlock' AND has_function_privilege('regress_nobody', p.oid, 'EXECUTE');
DO $$
DECLARE f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace
	         AND p.proname ~ '^pg_(try_)?advisory_(xact_)?lock(_shared)?$' LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
	END LOOP;
END
$$;

DROP ROLE regress_operator;
DROP ROLE regress_relay;
DROP ROLE regress_app;
DROP ROLE regress_nobody;
