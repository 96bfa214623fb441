-- Privileges: each of the three roles may execute exactly its functions and
-- touch nothing else; PUBLIC gets nothing; every SECURITY DEFINER function
-- pins its search_path and every function that writes runs as SECURITY
-- DEFINER.
\set ON_ERROR_STOP 1
\set QUIET 1

BEGIN;
SET LOCAL search_path = public;
SELECT plan(102);

-- Every function a role may execute, with the roles that may: the customer
-- API (the customers' calls), operators (catalog, stock, coupons,
-- users, reading everything, the scheduled housekeeping) and the outbox
-- relay.
CREATE TEMP TABLE api_functions (signature text PRIMARY KEY, writes boolean NOT NULL,
	roles text[] NOT NULL) ON COMMIT DROP;
GRANT SELECT ON api_functions TO PUBLIC;
INSERT INTO api_functions VALUES
	('commerce.error_codes()', false, '{commerce_api,commerce_operator,commerce_relay}'),
	('commerce.create_user(text)', true, '{commerce_api,commerce_operator}'),
	('commerce.charge_balance(bigint,bigint)', true, '{commerce_api}'),
	('commerce.get_balance(bigint)', false, '{commerce_api,commerce_operator}'),
	('commerce.create_product(text,bigint,integer,text,integer)', true, '{commerce_operator}'),
	('commerce.restock(bigint,integer)', true, '{commerce_operator}'),
	('commerce.get_product(bigint)', false, '{commerce_api,commerce_operator}'),
	('commerce.list_products(text,text,integer,bigint)', false, '{commerce_api,commerce_operator}'),
	('commerce.create_coupon(text,text,bigint,integer,timestamp with time zone,timestamp with time zone,bigint,bigint,text,integer)', true, '{commerce_operator}'),
	('commerce.user_coupons(bigint)', false, '{commerce_api,commerce_operator}'),
	('commerce.issue_coupon(bigint,bigint)', true, '{commerce_api}'),
	('commerce.issue_coupon_by_code(bigint,text)', true, '{commerce_api}'),
	('commerce.keyed_call(bigint,text,text,jsonb)', true, '{commerce_api}'),
	('commerce.operator_call(bigint,text,text,jsonb)', true, '{commerce_operator}'),
	('commerce.purge_idempotency_keys()', true, '{commerce_operator}'),
	('commerce.get_coupon(bigint)', false, '{commerce_operator}'),
	('commerce.user_orders(bigint,integer,bigint)', false, '{commerce_api,commerce_operator}'),
	('commerce.decrement_stock(bigint,integer)', true, '{commerce_operator}'),
	('commerce.place_order(bigint,jsonb,bigint,text)', true, '{commerce_api}'),
	('commerce.cancel_order(bigint,bigint)', true, '{commerce_api}'),
	('commerce.get_order(bigint)', false, '{commerce_api,commerce_operator}'),
	('commerce.popular_products(integer,integer)', false, '{commerce_api,commerce_operator}'),
	('commerce.claim_events(integer,interval)', true, '{commerce_relay}'),
	('commerce.ack_events(bigint[])', true, '{commerce_relay}'),
	('commerce.release_events(bigint[])', true, '{commerce_relay}'),
	('commerce.extend_events(bigint[],interval)', true, '{commerce_relay}'),
	('commerce.outbox_lag()', false, '{commerce_relay,commerce_operator}'),
	('commerce.sold_out_hints()', false, '{commerce_operator}'),
	('commerce.sold_out_hints_active()', false, '{commerce_operator}'),
	('commerce.housekeeping()', true, '{commerce_operator}'),
	('commerce.refresh_popular()', true, '{commerce_operator}'),
	('commerce.run_housekeeping(integer)', false, '{commerce_operator}');

CREATE TEMP TABLE api_roles (name text PRIMARY KEY) ON COMMIT DROP;
INSERT INTO api_roles VALUES ('commerce_api'), ('commerce_operator'), ('commerce_relay');

------------------------------------------------------------------------------
-- The three roles (5 tests each, then one per granted function)
------------------------------------------------------------------------------

SELECT has_role(name) FROM api_roles ORDER BY name;
SELECT is((SELECT rolcanlogin OR rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls
           FROM pg_roles WHERE rolname = name), false,
	name || ' cannot log in and has no role attributes (a login role is granted it)')
FROM api_roles ORDER BY name;
SELECT schema_privs_are('commerce', name, ARRAY['USAGE'],
	name || ' has USAGE on schema commerce and nothing more')
FROM api_roles ORDER BY name;

-- one test per granted function, so a missing grant names itself
SELECT ok(has_function_privilege(r.name, f.signature, 'EXECUTE'),
	r.name || ' may execute ' || f.signature)
FROM api_functions f, unnest(f.roles) AS r(name) ORDER BY r.name, f.signature;

-- and exactly those: nothing of another role, no internal helper
SELECT set_eq(
	format($$SELECT p.oid::regprocedure::text FROM pg_proc p
	         WHERE p.pronamespace = 'commerce'::regnamespace
	           AND has_function_privilege(%L, p.oid, 'EXECUTE')$$, name),
	format($$SELECT signature FROM api_functions WHERE %L = ANY (roles)$$, name),
	name || ' may execute its own functions and no other function of commerce')
FROM api_roles ORDER BY name;

SELECT is_empty(format($$
	SELECT c.oid::regclass::text || ' ' || c.relkind::text FROM pg_class c
	WHERE c.relnamespace = 'commerce'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	  AND has_table_privilege(%L, c.oid,
	        'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
$$, name), name || ' has no privilege on any table of commerce')
FROM api_roles ORDER BY name;
SELECT is_empty(format($$
	SELECT c.oid::regclass::text FROM pg_class c
	WHERE c.relnamespace = 'commerce'::regnamespace
	  AND has_any_column_privilege(%L, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
$$, name), name || ' has no column privilege in commerce')
FROM api_roles ORDER BY name;
SELECT is_empty(format($$
	SELECT c.oid::regclass::text FROM pg_class c
	WHERE c.relnamespace = 'commerce'::regnamespace
	  AND CASE WHEN c.relkind = 'S'
	           THEN has_sequence_privilege(%L, c.oid, 'USAGE, SELECT, UPDATE') END
$$, name), name || ' has no privilege on any sequence of commerce')
FROM api_roles ORDER BY name;

-- the outbox is the relay's alone
SELECT ok(NOT has_function_privilege(name, 'commerce.ack_events(bigint[])', 'EXECUTE')
          AND NOT has_function_privilege(name, 'commerce.claim_events(integer,interval)', 'EXECUTE')
          AND NOT has_function_privilege(name, 'commerce.release_events(bigint[])', 'EXECUTE'),
	name || ' can neither claim, acknowledge nor release outbox events')
FROM api_roles WHERE name <> 'commerce_relay' ORDER BY name;

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
	  -- a procedure that COMMITs cannot be SECURITY DEFINER; it only calls housekeeping(), which is
	  AND p.oid <> 'commerce.run_housekeeping(integer)'::regprocedure
$$, 'every volatile function a role may execute is SECURITY DEFINER');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'commerce'::regnamespace AND p.provolatile <> 'v'
	  AND p.oid::regprocedure::text IN (SELECT signature FROM api_functions WHERE writes)
$$, 'no function that writes is declared STABLE or IMMUTABLE');

-- commerce.raise and commerce.require_read_committed only raise and
-- commerce.lock_idempotency_key only locks; sold_out_hint_give_back (a
-- trigger, run by the writer's statement) and forget_sold_out_hints
-- (superuser only) change nothing but the shared sold-out hints;
-- stock_put_back (cancel_order's helper) writes
-- and, although only its owner may execute it, is SECURITY DEFINER too;
-- run_housekeeping COMMITs, which a SECURITY DEFINER procedure may not, and
-- only calls housekeeping(), which is one.
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'commerce'::regnamespace AND p.provolatile = 'v' AND NOT p.prosecdef
	  AND p.oid NOT IN ('commerce.raise(text,text,text,text)'::regprocedure,
	                    'commerce.require_read_committed(text)'::regprocedure,
	                    'commerce.lock_idempotency_key(bigint,text)'::regprocedure,
	                    'commerce.sold_out_hint_give_back()'::regprocedure,
	                    'commerce.forget_sold_out_hints()'::regprocedure,
	                    'commerce.run_housekeeping(integer)'::regprocedure)
$$, 'every volatile function of commerce (all of them write, except those that raise, lock or only call) is SECURITY DEFINER');

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
SELECT throws_ok($$SELECT commerce.create_product('priv-p', 1, 1)$$, '42501', NULL,
	'commerce_api cannot change the catalog');
SELECT throws_ok($$SELECT commerce.ack_events(ARRAY[1::bigint])$$, '42501', NULL,
	'commerce_api cannot acknowledge events');
SELECT throws_ok($$SELECT * FROM commerce.operator_call(1, NULL, 'create_product', '{"name": "p", "price": 1, "stock": 1}')$$,
	'42501', NULL, 'commerce_api cannot run an operator write through operator_call');
SELECT throws_ok($$SELECT * FROM commerce.final_answer(1, NULL, 'create_product', '{"name": "p", "price": 1, "stock": 1}')$$,
	'42501', NULL, 'commerce_api cannot call an internal helper (final_answer)');
SELECT throws_ok($$SELECT * FROM commerce.keyed_answer(1, 'k', 'restock', '{"product_id": 1, "quantity": 1}')$$,
	'42501', NULL, 'commerce_api cannot call an internal helper (keyed_answer)');
SELECT throws_ok($$SELECT * FROM commerce.housekeeping()$$, '42501', NULL,
	'commerce_api cannot run the housekeeping');
RESET ROLE;

SET LOCAL ROLE commerce_operator;
SELECT lives_ok($$SELECT commerce.restock(commerce.create_product('priv-op', 100, 1), 5)$$,
	'commerce_operator can create and restock a product');
SELECT throws_ok($$SELECT * FROM commerce.place_order(1, '[{"product_id": 1, "quantity": 1}]')$$,
	'42501', NULL, 'commerce_operator cannot place an order');
SELECT throws_ok($$SELECT * FROM commerce.claim_events(10)$$, '42501', NULL,
	'commerce_operator cannot claim events');
SELECT throws_ok($$SELECT commerce.release_events(ARRAY[1::bigint])$$, '42501', NULL,
	'commerce_operator cannot release events');
SELECT lives_ok($$SELECT * FROM commerce.housekeeping()$$, 'commerce_operator can run the housekeeping');
SELECT lives_ok($$SELECT * FROM commerce.refresh_popular()$$,
	'commerce_operator can refresh the popular-products ranking');
RESET ROLE;

SET LOCAL ROLE commerce_relay;
SELECT lives_ok($$SELECT commerce.ack_events(ARRAY(SELECT event_id FROM commerce.claim_events(10, '1 second')))$$,
	'commerce_relay can claim and acknowledge events');
SELECT lives_ok($$SELECT commerce.release_events(ARRAY(SELECT event_id FROM commerce.claim_events(10))),
                         (SELECT pending FROM commerce.outbox_lag())$$,
	'commerce_relay can release events and read the backlog');
SELECT throws_ok($$SELECT * FROM commerce.housekeeping()$$, '42501', NULL,
	'commerce_relay cannot run the housekeeping');
SELECT throws_ok($$SELECT commerce.get_balance(1)$$, '42501', NULL,
	'commerce_relay cannot call the customer API');
SELECT throws_ok($$SELECT * FROM commerce.outbox$$, '42501', NULL,
	'commerce_relay cannot read the outbox table itself');
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
