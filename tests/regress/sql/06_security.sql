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
DROP ROLE regress_app;
DROP ROLE regress_nobody;
