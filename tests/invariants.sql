-- tests/invariants.sql — the invariants of docs/design.md ("Invariants"), checked in SQL.
--
-- The one implementation of those checks: the Perl TAP tests (tests/tap)
-- and the load tests (tests/load) both run it after their load, and it can
-- be run by hand after any crash or fault test.  It reads schema commerce
-- and what the test recorded in schema invariant_input (tests/
-- invariant_input.sql creates it when missing; left empty, the checks that
-- need it pass vacuously):
--   invariant_input.initial_stock(product_id, quantity)
--       a product's stock when the test began; products not listed are
--       checked through the sales statistics only
--   invariant_input.stock_moves(product_id, quantity)
--       units added (restock, +) or taken outside orders (decrement_stock, -)
--   invariant_input.acked_orders(order_id, user_id, paid_amount)
--       orders a client was told succeeded (paid_amount may be NULL)
--
-- Output: one row per invariant, (name, ok, detail); ok is true or false,
-- detail counts the violations and shows the first.  Run it with psql
-- (-At for machine reading) as a role that may read schema commerce.

\set ON_ERROR_STOP 1
\ir invariant_input.sql

-- Units held by paid orders, per product.
CREATE TEMP VIEW sold AS
	SELECT oi.product_id, sum(oi.quantity) AS quantity
	FROM commerce.order_items oi JOIN commerce.orders o ON o.id = oi.order_id
	WHERE o.status = 'paid'
	GROUP BY oi.product_id;

-- The same, for the hours commerce.housekeeping() keeps statistics of: it
-- removes sales_stats hours older than popular_products' longest window (365
-- days, COMMERCE_MAX_POPULAR_DAYS); an hour of slack for the time between
-- its run and this check.
CREATE TEMP VIEW sold_in_statistics_window AS
	SELECT oi.product_id, sum(oi.quantity) AS quantity
	FROM commerce.order_items oi JOIN commerce.orders o ON o.id = oi.order_id
	WHERE o.status = 'paid'
	  AND o.created_at >= date_trunc('hour', now() - interval '365 days') + interval '1 hour'
	GROUP BY oi.product_id;

CREATE TEMP VIEW stock AS
	SELECT sb.product_id, sum(sb.quantity) AS quantity
	FROM commerce.stock_buckets sb GROUP BY sb.product_id;

CREATE TEMP VIEW moved AS
	SELECT product_id, sum(quantity) AS quantity
	FROM invariant_input.stock_moves GROUP BY product_id;

-- (order, name, number of violations, first violation)
CREATE TEMP VIEW invariant_violations AS
WITH
stock_negative AS (
	SELECT format('product %s bucket %s holds %s', product_id, bucket, quantity) AS v
	FROM commerce.stock_buckets WHERE quantity < 0
),
stock_conservation AS (
	SELECT format('product %s: initial %s + moved %s - remaining %s <> sold %s', i.product_id,
	              i.quantity, coalesce(m.quantity, 0), coalesce(s.quantity, 0), coalesce(d.quantity, 0)) AS v
	FROM invariant_input.initial_stock i
	LEFT JOIN stock s ON s.product_id = i.product_id
	LEFT JOIN moved m ON m.product_id = i.product_id
	LEFT JOIN sold d ON d.product_id = i.product_id
	WHERE i.quantity + coalesce(m.quantity, 0) - coalesce(s.quantity, 0) <> coalesce(d.quantity, 0)
),
sales_stats AS (
	SELECT format('product %s: statistics say %s sold, paid orders hold %s',
	              coalesce(st.product_id, d.product_id), coalesce(st.quantity, 0), coalesce(d.quantity, 0)) AS v
	FROM (SELECT product_id, sum(quantity) AS quantity FROM commerce.sales_stats
	      WHERE hour >= date_trunc('hour', now() - interval '365 days') + interval '1 hour'
	      GROUP BY product_id) st
	FULL JOIN sold_in_statistics_window d ON d.product_id = st.product_id
	WHERE coalesce(st.quantity, 0) <> coalesce(d.quantity, 0)
),
coupon_quantity AS (
	SELECT format('coupon %s: %s issued of %s', c.id, n.issued, c.total_quantity) AS v
	FROM commerce.coupons c
	JOIN (SELECT coupon_id, count(*) AS issued FROM commerce.issued_coupons GROUP BY coupon_id) n
	  ON n.coupon_id = c.id
	WHERE n.issued > c.total_quantity
),
coupon_conservation AS (
	SELECT format('coupon %s: %s issued + %s left <> quantity %s (or a bucket below 0)',
	              c.id, coalesce(n.issued, 0), coalesce(b.left_over, 0), c.total_quantity) AS v
	FROM commerce.coupons c
	LEFT JOIN (SELECT coupon_id, count(*) AS issued FROM commerce.issued_coupons GROUP BY coupon_id) n
	  ON n.coupon_id = c.id
	LEFT JOIN (SELECT coupon_id, sum(quantity) AS left_over, min(quantity) AS lowest
	           FROM commerce.coupon_buckets GROUP BY coupon_id) b
	  ON b.coupon_id = c.id
	WHERE coalesce(n.issued, 0) + coalesce(b.left_over, 0) <> c.total_quantity OR b.lowest < 0
),
coupon_per_user AS (
	SELECT format('user %s holds coupon %s %s times', user_id, coupon_id, count(*)) AS v
	FROM commerce.issued_coupons GROUP BY coupon_id, user_id HAVING count(*) > 1
),
wallet_ledger AS (
	SELECT format('user %s: balance %s, ledger sum %s', u.id, u.balance, coalesce(l.total, 0)) AS v
	FROM commerce.users u
	LEFT JOIN (SELECT user_id, sum(amount) AS total FROM commerce.wallet_ledger GROUP BY user_id) l
	  ON l.user_id = u.id
	WHERE u.balance <> coalesce(l.total, 0)
),
wallet_negative AS (
	SELECT format('user %s: balance %s', id, balance) AS v FROM commerce.users WHERE balance < 0
),
order_payment AS (
	SELECT format('order %s (%s, paid %s): %s payments, %s', o.id, o.status, o.paid_amount,
	              count(p.id), string_agg(p.status || ' ' || p.amount, ', ')) AS v
	FROM commerce.orders o LEFT JOIN commerce.payments p ON p.order_id = o.id
	GROUP BY o.id, o.status, o.paid_amount
	HAVING count(p.id) <> 1
	    OR bool_or(p.amount <> o.paid_amount)
	    OR bool_or(p.status <> CASE o.status WHEN 'paid' THEN 'paid' ELSE 'refunded' END)
),
order_amounts AS (
	SELECT format('order %s: total %s, discount %s, paid %s, items %s',
	              o.id, o.total_amount, o.discount_amount, o.paid_amount, i.amount) AS v
	FROM commerce.orders o
	LEFT JOIN (SELECT order_id, sum(unit_price * quantity) AS amount FROM commerce.order_items GROUP BY order_id) i
	  ON i.order_id = o.id
	WHERE o.total_amount - o.discount_amount <> o.paid_amount
	   OR o.discount_amount NOT BETWEEN 0 AND o.total_amount
	   OR i.amount IS DISTINCT FROM o.total_amount
),
order_ledger AS (
	-- the wallet paid exactly what each order says, and got it back on cancel
	SELECT format('order %s (%s): paid %s, ledger debits %s, refunds %s', o.id, o.status, o.paid_amount,
	              coalesce(l.debit, 0), coalesce(l.refund, 0)) AS v
	FROM commerce.orders o
	LEFT JOIN (SELECT order_id,
	                  -sum(amount) FILTER (WHERE reason = 'order_payment') AS debit,
	                  sum(amount) FILTER (WHERE reason = 'order_refund') AS refund
	           FROM commerce.wallet_ledger WHERE order_id IS NOT NULL GROUP BY order_id) l
	  ON l.order_id = o.id
	WHERE coalesce(l.debit, 0) <> o.paid_amount
	   OR coalesce(l.refund, 0) <> CASE o.status WHEN 'cancelled' THEN o.paid_amount ELSE 0 END
),
used_coupon AS (
	-- a used coupon belongs to exactly one paid order, of its owner, that names it
	SELECT format('issued coupon %s of user %s: status %s, order %s, paid orders naming it %s',
	              ic.id, ic.user_id, ic.status, ic.order_id, count(o2.id)) AS v
	FROM commerce.issued_coupons ic
	LEFT JOIN commerce.orders o ON o.id = ic.order_id
	LEFT JOIN commerce.orders o2 ON o2.issued_coupon_id = ic.id AND o2.status = 'paid'
	GROUP BY ic.id, ic.user_id, ic.status, ic.order_id, o.user_id, o.status, o.issued_coupon_id
	HAVING (ic.status = 'used' AND (o.user_id IS DISTINCT FROM ic.user_id OR o.status <> 'paid'
	                                OR o.issued_coupon_id IS DISTINCT FROM ic.id OR count(o2.id) <> 1))
	    OR (ic.status = 'issued' AND count(o2.id) <> 0)
),
idempotency AS (
	SELECT format('user %s key %L: %s orders', user_id, idempotency_key, count(*)) AS v
	FROM commerce.orders WHERE idempotency_key IS NOT NULL
	GROUP BY user_id, idempotency_key HAVING count(*) > 1
),
outbox AS (
	-- one event per placed order, per cancellation and per issued coupon;
	-- none is allowed too when it happened longer ago than
	-- pg_commerce.outbox_retention: its event may have been delivered and
	-- removed by commerce.housekeeping() (never an undelivered one)
	SELECT format('%s %s: %s events, expected %s', x.kind, x.id, coalesce(e.got, 0), x.expected) AS v
	FROM (SELECT 'order_placed' AS kind, id, 1 AS expected, created_at AS at FROM commerce.orders
	      UNION ALL
	      SELECT 'order_cancelled', id, CASE status WHEN 'cancelled' THEN 1 ELSE 0 END, cancelled_at
	      FROM commerce.orders
	      UNION ALL
	      SELECT 'coupon_issued', id, 1, issued_at FROM commerce.issued_coupons) x
	FULL JOIN (SELECT event_type, aggregate_id, count(*) AS got FROM commerce.outbox
	           GROUP BY event_type, aggregate_id) e
	  ON e.event_type = x.kind AND e.aggregate_id = x.id
	WHERE coalesce(e.got, 0) <> coalesce(x.expected, 0)
	  AND NOT (e.got IS NULL AND x.at < now() - commerce.outbox_retention())
),
acked AS (
	SELECT format('acknowledged order %s (user %s, paid %s): %s', a.order_id, a.user_id, a.paid_amount,
	              CASE WHEN o.id IS NULL THEN 'missing'
	                   ELSE format('stored for user %s, paid %s', o.user_id, o.paid_amount) END) AS v
	FROM invariant_input.acked_orders a LEFT JOIN commerce.orders o ON o.id = a.order_id
	WHERE o.id IS NULL OR o.user_id <> a.user_id OR o.paid_amount <> coalesce(a.paid_amount, o.paid_amount)
)
          SELECT 1 AS seq, 'stock never negative' AS name, count(*) AS n, min(v) AS first FROM stock_negative
UNION ALL SELECT 2, 'sold = initial + moved - remaining, per product', count(*), min(v) FROM stock_conservation
UNION ALL SELECT 3, 'sales statistics = units sold, per product', count(*), min(v) FROM sales_stats
UNION ALL SELECT 4, 'coupons issued <= quantity', count(*), min(v) FROM coupon_quantity
UNION ALL SELECT 5, 'coupons issued + left = quantity, no bucket below 0', count(*), min(v) FROM coupon_conservation
UNION ALL SELECT 6, 'at most one issued coupon per user per coupon', count(*), min(v) FROM coupon_per_user
UNION ALL SELECT 7, 'wallet balance = sum of its ledger', count(*), min(v) FROM wallet_ledger
UNION ALL SELECT 8, 'wallet balance >= 0', count(*), min(v) FROM wallet_negative
UNION ALL SELECT 9, 'one payment per order, of its paid amount, refunded with it', count(*), min(v) FROM order_payment
UNION ALL SELECT 10, 'total = items, total - discount = paid, discount <= total', count(*), min(v) FROM order_amounts
UNION ALL SELECT 11, 'the wallet paid each order once, and got it back once if cancelled', count(*), min(v) FROM order_ledger
UNION ALL SELECT 12, 'a used coupon belongs to exactly one paid order of its owner', count(*), min(v) FROM used_coupon
UNION ALL SELECT 13, 'one order per idempotency key (per user)', count(*), min(v) FROM idempotency
UNION ALL SELECT 14, 'outbox: one event per placed order, cancellation, issued coupon', count(*), min(v) FROM outbox
UNION ALL SELECT 15, 'every acknowledged order exists, for its user', count(*), min(v) FROM acked;

SELECT name, n = 0 AS ok,
       CASE WHEN n = 0 THEN 'ok' ELSE format('%s violations; e.g. %s', n, first) END AS detail
FROM invariant_violations ORDER BY seq;
