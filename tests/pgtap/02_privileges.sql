-- Privileges: commerce_api may execute the API and touch nothing else;
-- PUBLIC gets nothing; every SECURITY DEFINER function pins its search_path
-- and every function that writes runs as SECURITY DEFINER.
\set ON_ERROR_STOP 1
\set QUIET 1

BEGIN;
SET LOCAL search_path = public;
SELECT plan(44);

-- The API of SPEC §4 plus error_codes(): exactly what commerce_api may execute.
CREATE TEMP TABLE api_functions (signature text PRIMARY KEY, writes boolean NOT NULL) ON COMMIT DROP;
GRANT SELECT ON api_functions TO PUBLIC;
INSERT INTO api_functions VALUES
	('commerce.error_codes()', false),
	('commerce.create_user(text)', true),
	('commerce.charge_balance(bigint,bigint)', true),
	('commerce.get_balance(bigint)', false),
	('commerce.create_product(text,bigint,integer,text,integer)', true),
	('commerce.restock(bigint,integer)', true),
	('commerce.get_product(bigint)', false),
	('commerce.list_products(text,text,integer,bigint)', false),
	('commerce.create_coupon(text,text,bigint,integer,timestamp with time zone,timestamp with time zone,bigint,bigint,text,integer)', true),
	('commerce.user_coupons(bigint)', false),
	('commerce.issue_coupon(bigint,bigint)', true),
	('commerce.decrement_stock(bigint,integer)', true),
	('commerce.place_order(bigint,jsonb,bigint,text)', true),
	('commerce.cancel_order(bigint,bigint)', true),
	('commerce.get_order(bigint)', false),
	('commerce.popular_products(integer,integer)', false),
	('commerce.claim_events(integer,interval)', true),
	('commerce.ack_events(bigint[])', true);

------------------------------------------------------------------------------
-- commerce_api
------------------------------------------------------------------------------

SELECT has_role('commerce_api');
SELECT is((SELECT rolcanlogin OR rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls
           FROM pg_roles WHERE rolname = 'commerce_api'), false,
	'commerce_api cannot log in and has no role attributes (a login role is granted it)');
SELECT schema_privs_are('commerce', 'commerce_api', ARRAY['USAGE'],
	'commerce_api has USAGE on schema commerce and nothing more');

-- one test per API function, so a missing grant names itself
SELECT ok(has_function_privilege('commerce_api', signature, 'EXECUTE'),
	'commerce_api may execute ' || signature)
FROM api_functions ORDER BY signature;

SELECT set_eq(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p
	  WHERE p.pronamespace = 'commerce'::regnamespace
	    AND has_function_privilege('commerce_api', p.oid, 'EXECUTE')$$,
	$$SELECT signature FROM api_functions$$,
	'commerce_api may execute the API functions and no internal helper');

SELECT is_empty($$
	SELECT c.oid::regclass::text || ' ' || c.relkind::text FROM pg_class c
	WHERE c.relnamespace = 'commerce'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	  AND has_table_privilege('commerce_api', c.oid,
	        'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
$$, 'commerce_api has no privilege on any table of commerce');
SELECT is_empty($$
	SELECT c.oid::regclass::text FROM pg_class c
	WHERE c.relnamespace = 'commerce'::regnamespace
	  AND has_any_column_privilege('commerce_api', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
$$, 'commerce_api has no column privilege in commerce');
SELECT is_empty($$
	SELECT c.oid::regclass::text FROM pg_class c
	WHERE c.relnamespace = 'commerce'::regnamespace
	  AND CASE WHEN c.relkind = 'S'
	           THEN has_sequence_privilege('commerce_api', c.oid, 'USAGE, SELECT, UPDATE') END
$$, 'commerce_api has no privilege on any sequence of commerce');

------------------------------------------------------------------------------
-- PUBLIC (ACLs as effective: a NULL acl means the built-in default)
------------------------------------------------------------------------------

SELECT is_empty($$
	SELECT a.privilege_type FROM pg_namespace n,
	       aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
	WHERE n.nspname = 'commerce' AND a.grantee = 0
$$, 'PUBLIC has no privilege on schema commerce');
SELECT is_empty($$
	SELECT c.oid::regclass::text || ' ' || a.privilege_type FROM pg_class c,
	       aclexplode(coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char",
	                                                c.relowner))) a
	WHERE c.relnamespace = 'commerce'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
	  AND a.grantee = 0
$$, 'PUBLIC has no privilege on any table or sequence of commerce');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p,
	       aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
	WHERE p.pronamespace = 'commerce'::regnamespace AND a.grantee = 0
$$, 'PUBLIC may execute no function of commerce');
SELECT is_empty($$
	SELECT t.oid::regtype::text FROM pg_type t
	  LEFT JOIN pg_class c ON c.oid = t.typrelid,
	       aclexplode(coalesce(t.typacl, acldefault('T', t.typowner))) a
	WHERE t.typnamespace = 'commerce'::regnamespace AND t.typelem = 0
	  AND (c.oid IS NULL OR c.relkind = 'c')
	  AND a.grantee = 0
$$, 'PUBLIC has no USAGE on the standalone types of commerce');

------------------------------------------------------------------------------
-- SECURITY DEFINER
------------------------------------------------------------------------------

SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'commerce'::regnamespace AND p.prosecdef
	  AND NOT EXISTS (SELECT FROM unnest(p.proconfig) s WHERE s LIKE 'search\_path=%')
$$, 'every SECURITY DEFINER function sets search_path in proconfig');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text || ': ' || s FROM pg_proc p, unnest(p.proconfig) s
	WHERE p.pronamespace = 'commerce'::regnamespace AND p.prosecdef
	  AND s LIKE 'search\_path=%'
	  AND NOT (s ~ 'pg_temp$' AND s !~ '(public|\$user)')
$$, 'every pinned search_path ends with pg_temp and names neither public nor $user');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'commerce'::regnamespace AND NOT p.prosecdef
	  AND p.oid::regprocedure::text IN (SELECT signature FROM api_functions WHERE writes)
$$, 'every API function that writes is SECURITY DEFINER');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'commerce'::regnamespace AND p.provolatile = 'v' AND NOT p.prosecdef
	  AND p.oid::regprocedure::text IN (SELECT signature FROM api_functions)
$$, 'every volatile function that commerce_api may execute is SECURITY DEFINER');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'commerce'::regnamespace AND p.provolatile <> 'v'
	  AND p.oid::regprocedure::text IN (SELECT signature FROM api_functions WHERE writes)
$$, 'no function that writes is declared STABLE or IMMUTABLE');

-- commerce.raise only raises; stock_put_back (cancel_order's helper) writes
-- and, although only its owner may execute it, is SECURITY DEFINER too.
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'commerce'::regnamespace AND p.provolatile = 'v' AND NOT p.prosecdef
	  AND p.oid <> 'commerce.raise(text,text,text,text)'::regprocedure
$$, 'every volatile function of commerce (all of them write, except raise) is SECURITY DEFINER');

------------------------------------------------------------------------------
-- The same, by behaviour
------------------------------------------------------------------------------

SET LOCAL ROLE commerce_api;
SELECT lives_ok($$SELECT commerce.create_user('priv-api-user')$$,
	'commerce_api can call a writing API function');
SELECT lives_ok($$SELECT commerce.charge_balance(commerce.create_user('priv-2'), 500)$$,
	'commerce_api can create and charge a user');
SELECT throws_ok($$SELECT * FROM commerce.users$$, '42501', NULL,
	'commerce_api cannot read a table');
SELECT throws_ok($$UPDATE commerce.users SET balance = 1000000$$, '42501', NULL,
	'commerce_api cannot write a table');
SELECT throws_ok($$SELECT nextval('commerce.orders_id_seq')$$, '42501', NULL,
	'commerce_api cannot use a sequence');
SELECT throws_ok($$SELECT commerce.raise('NOT_FOUND', 'x')$$, '42501', NULL,
	'commerce_api cannot call an internal helper (raise)');
SELECT throws_ok($$SELECT commerce.stock_put_back(1, 1000, 0)$$, '42501', NULL,
	'commerce_api cannot call an internal helper (stock_put_back)');
RESET ROLE;

SELECT 'pgtap_nobody_' || pg_backend_pid() AS nobody \gset
CREATE ROLE :"nobody" NOLOGIN;
SET LOCAL ROLE :"nobody";
SELECT throws_ok($$SELECT commerce.get_balance(1)$$, '42501', NULL,
	'a role with only PUBLIC''s rights cannot call the API');
SELECT throws_ok($$SELECT * FROM commerce.products$$, '42501', NULL,
	'a role with only PUBLIC''s rights cannot read a table');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
