-- The upgrade path: CREATE EXTENSION at the first version, then ALTER
-- EXTENSION ... UPDATE, gives exactly the schema of a fresh install of the
-- current version, and the upgraded extension works.  (Runs after the files
-- that share the first install's data, since it drops the extension; the
-- files after it make extensions of their own.)
\set SHOW_CONTEXT never

-- Everything the extension owns that an upgrade could get wrong, without
-- OIDs: tables and their storage options, columns, constraints, indexes,
-- functions (definition, security, settings, privileges), types.
CREATE FUNCTION pg_temp.schema_fingerprint() RETURNS SETOF text LANGUAGE sql AS $$
	SELECT format('relation %s %s %s acl=%s', c.relname, c.relkind, c.reloptions, c.relacl)
	FROM pg_class c WHERE c.relnamespace = 'commerce'::regnamespace
	UNION ALL
	SELECT format('column %s.%s %s notnull=%s default=%s identity=%s', c.relname, a.attname,
	              format_type(a.atttypid, a.atttypmod), a.attnotnull,
	              pg_get_expr(d.adbin, d.adrelid), a.attidentity)
	FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE c.relnamespace = 'commerce'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid))
	FROM pg_constraint WHERE connamespace = 'commerce'::regnamespace
	UNION ALL
	SELECT format('index %s', pg_get_indexdef(indexrelid))
	FROM pg_index WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'commerce'::regnamespace)
	UNION ALL
	SELECT format('function %s secdef=%s volatile=%s config=%s acl=%s body=%s',
	              p.oid::regprocedure, p.prosecdef, p.provolatile, p.proconfig, p.proacl,
	              md5(pg_get_functiondef(p.oid)))
	FROM pg_proc p WHERE p.pronamespace = 'commerce'::regnamespace
	UNION ALL
	SELECT format('type %s %s acl=%s', t.typname, t.typtype, t.typacl)
	FROM pg_type t WHERE t.typnamespace = 'commerce'::regnamespace
	UNION ALL
	SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
	FROM pg_trigger t WHERE NOT t.tgisinternal
	  AND t.tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'commerce'::regnamespace)
	UNION ALL
	-- what pg_dump dumps with its data
	SELECT format('dumped %s', c.relname)
	FROM pg_extension e, unnest(e.extconfig) AS t(oid) JOIN pg_class c ON c.oid = t.oid
	WHERE e.extname = 'pg_commerce'
$$;

SELECT extversion AS fresh_version FROM pg_extension WHERE extname = 'pg_commerce';
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.schema_fingerprint() AS item;
SELECT count(*) > 100 AS fingerprint_covers_the_schema FROM fresh;

DROP EXTENSION pg_commerce CASCADE;
CREATE EXTENSION pg_commerce VERSION '0.1.0';
SELECT extversion AS installed_version FROM pg_extension WHERE extname = 'pg_commerce';
-- data written by the old version survives the update
SELECT commerce.create_user('before-upgrade') AS user_id;
SELECT commerce.create_coupon('UPGRADE', 'fixed', 500, 10) AS coupon_id;
ALTER EXTENSION pg_commerce UPDATE;
SELECT extversion AS updated_version FROM pg_extension WHERE extname = 'pg_commerce';

-- no difference either way
(SELECT item AS only_in_fresh FROM fresh EXCEPT ALL SELECT * FROM pg_temp.schema_fingerprint())
ORDER BY 1;
(SELECT f AS only_in_upgraded FROM pg_temp.schema_fingerprint() AS f EXCEPT ALL SELECT item FROM fresh)
ORDER BY 1;

-- and the upgraded extension works on the old data
SELECT commerce.charge_balance(1, 10000);
SELECT commerce.issue_coupon(1, 1);
SELECT commerce.create_product('after-upgrade', 3000, 5) AS product_id;
SELECT status, total_amount, discount_amount, paid_amount
FROM commerce.place_order(1, '[{"product_id": 1, "quantity": 2}]', 1);
SELECT commerce.get_balance(1);
