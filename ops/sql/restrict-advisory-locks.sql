-- Takes the advisory-lock functions away from PUBLIC in the current database.
--
-- pg_commerce serialises some work on transaction-scoped advisory locks
-- (issue_coupon per coupon and user, place_order per user and idempotency
-- key; docs/security.md).  By default any login role may take advisory locks
-- with the same keys, and holding one stalls that user's call until the
-- holder's transaction ends.  The extension takes its locks in C, not through
-- these functions, so it keeps working after this; roles of other
-- applications that use advisory locks need an explicit GRANT afterwards
-- (GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_xact_lock(bigint) TO ...).
--
-- Run it as a superuser in every database that has the extension:
--   psql -d shop -f ops/sql/restrict-advisory-locks.sql
-- The change is kept by pg_dump (pg_init_privs) and undone with
-- GRANT EXECUTE ... TO PUBLIC on the same functions.
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
		WHERE p.pronamespace = 'pg_catalog'::regnamespace
		  AND p.proname OPERATOR(pg_catalog.~) '^pg_(try_)?advisory_(xact_)?lock(_shared)?$'
		ORDER BY 1
	LOOP
		EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
		RAISE NOTICE 'revoked EXECUTE on % from PUBLIC', f;
	END LOOP;
END
$$;
