-- Popular products from the precomputed ranking: refresh_popular ranks each
-- window of pg_commerce.popular_windows; popular_products answers from it
-- while it is fresh, exactly as the live computation would (ties by product
-- id), and computes live for other day counts and when the ranking is stale.
-- (After 09_upgrade: a fresh extension of its own.)
\set SHOW_CONTEXT never

DROP EXTENSION pg_commerce CASCADE;
CREATE EXTENSION pg_commerce;
SHOW pg_commerce.popular_windows;
SHOW pg_commerce.popular_max_age;
SELECT commerce.popular_windows();

-- 120 products; product 121 is never sold.  In one transaction, so that
-- now(), hence every window's first hour, is the same for every statement.
SELECT count(commerce.create_product('product ' || g, 1000, 10, buckets => 2)) FROM generate_series(1, 121) g;
BEGIN;
CREATE TEMP TABLE sale (product_id bigint, hours_ago integer, slot integer, quantity bigint) ON COMMIT DROP;
INSERT INTO sale VALUES
	-- products 1-4 in every window, 2 and 3 tied in each
	(1, 0, 0, 50), (1, 0, 1, 20), (2, 3, 0, 30), (3, 5, 1, 30), (4, 10, 0, 25),
	-- a cancellation (negative, in the hour of its order): 5 nets to 0 and is
	-- never ranked, 6 nets to 2
	(5, 2, 0, 40), (5, 2, 1, -40), (6, 1, 0, 5), (6, 1, 1, -3),
	-- the first hour of the 1-day window and the hour before it
	(7, 24, 0, 60), (8, 25, 0, 61),
	-- the 3-day window's first hour and the one before; the 7-day window's
	(9, 72, 0, 100), (10, 73, 0, 200), (11, 168, 0, 150), (11, 169, 1, 1),
	-- the 30-day window's first hour and the one before
	(12, 720, 0, 400), (13, 721, 0, 500);
-- products 14-120 sold 1 to 3 units two days ago: more than 100 products
-- in the windows of 3 days and longer, with many ties
INSERT INTO sale SELECT g, 48, 0, 1 + g % 3 FROM generate_series(14, 120) g;
INSERT INTO commerce.sales_stats (hour, product_id, slot, quantity)
	SELECT date_trunc('hour', now()) - make_interval(hours => s.hours_ago), s.product_id, s.slot, s.quantity
	FROM sale s;

-- no ranking yet: live
SELECT * FROM commerce.popular_products(1, 10);
SELECT window_days, ranked, window_from = date_trunc('hour', now() - make_interval(days => window_days)) AS window_ok
FROM commerce.refresh_popular();
SELECT days, count(*), min(rank), max(rank), sum(sold) FROM commerce.popular_ranking GROUP BY days ORDER BY days;
SELECT * FROM commerce.popular_products(1, 10);
SELECT * FROM commerce.popular_products(3, 5);
SELECT * FROM commerce.popular_products(30, 5);

-- The ranking and the live computation agree for every window and limit,
-- ties included: the answers from the ranking, then the same calls with the
-- ranking stale (as when the scheduler stopped), which compute live
CREATE TEMP TABLE answers (path text, days integer, lim integer, pos bigint, product_id bigint, name text,
	quantity_sold bigint) ON COMMIT DROP;
INSERT INTO answers
	SELECT 'ranking', d, l, row_number() OVER (PARTITION BY d, l), p.*
	FROM unnest(ARRAY[1, 3, 7, 30]) d, unnest(ARRAY[1, 2, 3, 5, 50, 100]) l, commerce.popular_products(d, l) p;
UPDATE commerce.popular_refresh SET refreshed_at = now() - interval '5 minutes 1 second';
INSERT INTO answers
	SELECT 'live', d, l, row_number() OVER (PARTITION BY d, l), p.*
	FROM unnest(ARRAY[1, 3, 7, 30]) d, unnest(ARRAY[1, 2, 3, 5, 50, 100]) l, commerce.popular_products(d, l) p;
SELECT path, count(*) AS rows, count(DISTINCT (days, lim)) AS calls FROM answers GROUP BY path ORDER BY path;
(SELECT days, lim, pos, product_id, name, quantity_sold FROM answers WHERE path = 'ranking'
 EXCEPT ALL
 SELECT days, lim, pos, product_id, name, quantity_sold FROM answers WHERE path = 'live')
UNION ALL
(SELECT days, lim, pos, product_id, name, quantity_sold FROM answers WHERE path = 'live'
 EXCEPT ALL
 SELECT days, lim, pos, product_id, name, quantity_sold FROM answers WHERE path = 'ranking');
-- 100 ranked in the longer windows, cut within a tie; equal quantities in
-- product id order
SELECT days, count(*) AS ranked, min(quantity_sold) AS last_sold, bool_and(in_order) AS ties_by_product_id
FROM (SELECT days, quantity_sold,
             coalesce(lag(quantity_sold) OVER w > quantity_sold OR lag(product_id) OVER w < product_id, true) AS in_order
      FROM answers WHERE path = 'ranking' AND lim = 100
      WINDOW w AS (PARTITION BY days ORDER BY pos)) a
GROUP BY days ORDER BY days;
-- of the products that sold one unit in 3 days, the lowest ids made the 100
SELECT count(*) AS sold_one, count(k.product_id) AS ranked,
       max(s.product_id) FILTER (WHERE k.product_id IS NOT NULL)
         < min(s.product_id) FILTER (WHERE k.product_id IS NULL) AS lowest_ids_ranked
FROM (SELECT product_id FROM commerce.sales_stats WHERE hour >= date_trunc('hour', now() - interval '3 days')
      GROUP BY product_id HAVING sum(quantity) = 1) s
LEFT JOIN commerce.popular_ranking k ON k.days = 3 AND k.product_id = s.product_id;

-- The ranking is what popular_products reads while fresh: a sale after the
-- refresh shows only live (a day count not precomputed, or the ranking
-- stale), and in the ranking once refreshed; a renamed product shows its
-- current name either way
SELECT count(*) AS windows_refreshed FROM commerce.refresh_popular();
INSERT INTO commerce.sales_stats (hour, product_id, slot, quantity)
	VALUES (date_trunc('hour', now()), 121, 0, 1000);
UPDATE commerce.products SET name = 'renamed' WHERE id = 1;
SELECT * FROM commerce.popular_products(1, 3);
SELECT * FROM commerce.popular_products(2, 3);
UPDATE commerce.popular_refresh SET refreshed_at = now() - interval '1 hour';
SELECT * FROM commerce.popular_products(1, 3);
-- how old a ranking may be is pg_commerce.popular_max_age
SET LOCAL pg_commerce.popular_max_age = '2h';
SELECT product_id FROM commerce.popular_products(1, 1);
RESET pg_commerce.popular_max_age;
SELECT count(*) AS windows_refreshed FROM commerce.refresh_popular();
SELECT * FROM commerce.popular_products(1, 3);

-- The windows are a setting: a refresh ranks exactly those in force and
-- drops the others (a day count no longer precomputed is computed live)
SET LOCAL pg_commerce.popular_windows = ' 5,2 , 5';
SELECT commerce.popular_windows();
SELECT window_days, ranked FROM commerce.refresh_popular();
SELECT DISTINCT days FROM commerce.popular_ranking ORDER BY days;
SELECT * FROM commerce.popular_products(2, 2);
SELECT * FROM commerce.popular_products(3, 2);
SET LOCAL pg_commerce.popular_windows = '';
SELECT commerce.popular_windows();
SELECT count(*) AS windows FROM commerce.refresh_popular();
SELECT count(*) AS ranking_rows FROM commerce.popular_ranking;
SELECT * FROM commerce.popular_products(2, 2);
COMMIT;

-- Bad settings are refused; only a superuser may change them
SET pg_commerce.popular_windows = '0';
SET pg_commerce.popular_windows = '366';
SET pg_commerce.popular_windows = '1,,3';
SET pg_commerce.popular_windows = '3,';
SET pg_commerce.popular_windows = 'week';
SET pg_commerce.popular_max_age = 0;
SHOW pg_commerce.popular_windows;
CREATE ROLE regress_popular_operator LOGIN IN ROLE commerce_operator;
SET ROLE regress_popular_operator;
SET pg_commerce.popular_windows = '1';
SET pg_commerce.popular_max_age = '1d';
SELECT count(*) AS windows_refreshed_by_an_operator FROM commerce.refresh_popular();
RESET ROLE;
DROP ROLE regress_popular_operator;

-- the rollup is dumped with the shop's data, like every table
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS t(oid) JOIN pg_class c ON c.oid = t.oid
WHERE e.extname = 'pg_commerce' AND c.relname LIKE 'popular%' ORDER BY 1;
