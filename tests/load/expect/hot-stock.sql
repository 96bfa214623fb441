-- hot-stock: exactly min(orders, stock) orders succeed and the stock ends at
-- stock - that, never below zero.
\set ON_ERROR_STOP 1
WITH f AS (SELECT max(value) FILTER (WHERE key = 'USERS') AS users,
                  max(value) FILTER (WHERE key = 'STOCK') AS stock,
                  max(value) FILTER (WHERE key = 'PRODUCT') AS product
           FROM loadtest.fixture),
o AS (SELECT count(*) AS orders FROM f, commerce.orders o JOIN commerce.order_items oi ON oi.order_id = o.id
      WHERE oi.product_id = f.product AND o.status = 'paid'),
s AS (SELECT sum(sb.quantity) AS remaining, min(sb.quantity) AS min_bucket, count(*) AS buckets
      FROM f, commerce.stock_buckets sb WHERE sb.product_id = f.product),
a AS (SELECT count(DISTINCT order_id) AS acked FROM invariant_input.acked_orders)
          SELECT 'hot: paid orders = min(orders, stock)' AS name, o.orders = least(f.users, f.stock) AS ok,
                 format('%s paid orders; %s orders for %s units', o.orders, f.users, f.stock) AS detail FROM f, o
UNION ALL SELECT 'hot: stock ends at stock - sold', s.remaining = greatest(f.stock - f.users, 0) AND s.min_bucket >= 0,
                 format('%s left over %s buckets (lowest %s)', s.remaining, s.buckets, s.min_bucket) FROM f, s
UNION ALL SELECT 'hot: every success acknowledged', a.acked = o.orders,
                 format('%s answered 201, %s stored', a.acked, o.orders) FROM a, o;
