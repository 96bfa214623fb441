/*
 * The invariants of SPEC §7, one row each: (name, ok, detail).  detail names
 * a few offenders when ok is false.  Reads schema commerce and the fixture
 * tables of tests/tap/fixture.sql (tap.initial_stock, tap.stock_moves,
 * tap.acked).  Run it after the load has finished.
 */
WITH
paid_lines AS (
	SELECT oi.product_id, sum(oi.quantity)::bigint AS quantity
	FROM commerce.order_items oi JOIN commerce.orders o ON o.id = oi.order_id
	WHERE o.status = 'paid' GROUP BY oi.product_id),
stock AS (
	SELECT p.id,
	       i.quantity AS initial,
	       coalesce((SELECT sum(m.quantity) FROM tap.stock_moves m WHERE m.product_id = p.id), 0) AS moved,
	       (SELECT sum(b.quantity) FROM commerce.stock_buckets b WHERE b.product_id = p.id) AS remaining,
	       coalesce(pl.quantity, 0) AS sold,
	       coalesce((SELECT sum(s.quantity) FROM commerce.sales_stats s WHERE s.product_id = p.id), 0) AS stats
	FROM commerce.products p
	LEFT JOIN tap.initial_stock i ON i.product_id = p.id
	LEFT JOIN paid_lines pl ON pl.product_id = p.id),
coupon AS (
	SELECT c.id, c.total_quantity,
	       (SELECT count(*) FROM commerce.issued_coupons ic WHERE ic.coupon_id = c.id) AS issued,
	       (SELECT sum(b.quantity) FROM commerce.coupon_buckets b WHERE b.coupon_id = c.id) AS remaining
	FROM commerce.coupons c),
wallet AS (
	SELECT u.id, u.balance,
	       coalesce((SELECT sum(l.amount) FROM commerce.wallet_ledger l WHERE l.user_id = u.id), 0) AS ledger
	FROM commerce.users u),
order_check AS (
	SELECT o.id, o.status, o.total_amount, o.discount_amount, o.paid_amount, i.items_total,
	       coalesce(p.payments, 0) AS payments, coalesce(p.matching, 0) AS matching_payments,
	       coalesce(l.debited, 0) AS debited, coalesce(l.refunded, 0) AS refunded
	FROM commerce.orders o
	LEFT JOIN (SELECT order_id, sum(unit_price * quantity) AS items_total
	           FROM commerce.order_items GROUP BY order_id) i ON i.order_id = o.id
	LEFT JOIN (SELECT p.order_id, count(*) AS payments,
	                  count(*) FILTER (WHERE p.amount = po.paid_amount
	                    AND p.status = CASE po.status WHEN 'paid' THEN 'paid' ELSE 'refunded' END) AS matching
	           FROM commerce.payments p JOIN commerce.orders po ON po.id = p.order_id
	           GROUP BY p.order_id) p ON p.order_id = o.id
	LEFT JOIN (SELECT order_id,
	                  sum(amount) FILTER (WHERE reason = 'order_payment') AS debited,
	                  sum(amount) FILTER (WHERE reason = 'order_refund') AS refunded
	           FROM commerce.wallet_ledger WHERE order_id IS NOT NULL GROUP BY order_id) l ON l.order_id = o.id),
coupon_uses AS (
	SELECT issued_coupon_id, count(*) FILTER (WHERE status = 'paid') AS paid_orders
	FROM commerce.orders WHERE issued_coupon_id IS NOT NULL GROUP BY issued_coupon_id),
checks (name, ok, detail) AS (
	SELECT 'stock never negative',
	       NOT EXISTS (SELECT FROM commerce.stock_buckets WHERE quantity < 0),
	       (SELECT string_agg(format('product %s bucket %s: %s', product_id, bucket, quantity), '; ')
	        FROM commerce.stock_buckets WHERE quantity < 0)
	UNION ALL
	SELECT 'sold = initial - remaining, per product (restocks and decrements counted)',
	       coalesce(bool_and(initial IS NOT NULL AND sold = initial + moved - remaining), true),
	       string_agg(format('product %s: initial %s, moved %s, remaining %s, sold %s', id, initial, moved, remaining, sold), '; ')
	         FILTER (WHERE NOT (initial IS NOT NULL AND sold = initial + moved - remaining))
	FROM stock
	UNION ALL
	SELECT 'sales statistics = units sold, per product',
	       coalesce(bool_and(stats = sold), true),
	       string_agg(format('product %s: stats %s, sold %s', id, stats, sold), '; ') FILTER (WHERE stats <> sold)
	FROM stock
	UNION ALL
	SELECT 'coupons issued <= quantity',
	       coalesce(bool_and(issued <= total_quantity), true),
	       string_agg(format('coupon %s: issued %s of %s', id, issued, total_quantity), '; ')
	         FILTER (WHERE issued > total_quantity)
	FROM coupon
	UNION ALL
	SELECT 'coupon buckets = quantity - issued, none negative',
	       coalesce(bool_and(remaining = total_quantity - issued), true)
	         AND NOT EXISTS (SELECT FROM commerce.coupon_buckets WHERE quantity < 0),
	       string_agg(format('coupon %s: buckets %s, quantity %s, issued %s', id, remaining, total_quantity, issued), '; ')
	         FILTER (WHERE remaining IS DISTINCT FROM total_quantity - issued)
	FROM coupon
	UNION ALL
	SELECT 'at most one issued coupon per user per coupon',
	       count(*) = 0,
	       string_agg(format('coupon %s user %s: %s', coupon_id, user_id, n), '; ')
	FROM (SELECT coupon_id, user_id, count(*) AS n FROM commerce.issued_coupons
	      GROUP BY 1, 2 HAVING count(*) > 1) d
	UNION ALL
	SELECT 'wallet balance = sum of its ledger',
	       coalesce(bool_and(balance = ledger), true),
	       string_agg(format('user %s: balance %s, ledger %s', id, balance, ledger), '; ') FILTER (WHERE balance <> ledger)
	FROM wallet
	UNION ALL
	SELECT 'wallet balance >= 0',
	       coalesce(bool_and(balance >= 0), true)
	         AND NOT EXISTS (SELECT FROM commerce.wallet_ledger WHERE balance_after < 0),
	       string_agg(format('user %s: %s', id, balance), '; ') FILTER (WHERE balance < 0)
	FROM wallet
	UNION ALL
	SELECT 'each order has exactly one payment, of its paid amount, paid or refunded with the order',
	       coalesce(bool_and(payments = 1 AND matching_payments = 1), true),
	       string_agg(format('order %s (%s): %s payments, %s matching', id, status, payments, matching_payments), '; ')
	         FILTER (WHERE NOT (payments = 1 AND matching_payments = 1))
	FROM order_check
	UNION ALL
	SELECT 'order amounts add up: total = sum of items, total - discount = paid, discount <= total',
	       coalesce(bool_and(total_amount = items_total AND total_amount - discount_amount = paid_amount
	                         AND discount_amount <= total_amount), true),
	       string_agg(format('order %s: total %s, items %s, discount %s, paid %s', id, total_amount, items_total,
	                         discount_amount, paid_amount), '; ')
	         FILTER (WHERE NOT (total_amount IS NOT DISTINCT FROM items_total
	                            AND total_amount - discount_amount = paid_amount AND discount_amount <= total_amount))
	FROM order_check
	UNION ALL
	SELECT 'the wallet was debited each order''s paid amount once, and refunded it once if cancelled',
	       coalesce(bool_and(debited = -paid_amount
	                         AND refunded = CASE status WHEN 'cancelled' THEN paid_amount ELSE 0 END), true),
	       string_agg(format('order %s (%s): paid %s, debited %s, refunded %s', id, status, paid_amount, debited, refunded), '; ')
	         FILTER (WHERE NOT (debited = -paid_amount
	                            AND refunded = CASE status WHEN 'cancelled' THEN paid_amount ELSE 0 END))
	FROM order_check
	UNION ALL
	SELECT 'a used coupon belongs to exactly one paid order of its owner',
	       count(*) = 0, string_agg(problem, '; ')
	FROM (
		SELECT format('issued coupon %s (used): %s paid orders, order_id %s', ic.id,
		              coalesce(u.paid_orders, 0), ic.order_id) AS problem
		FROM commerce.issued_coupons ic LEFT JOIN coupon_uses u ON u.issued_coupon_id = ic.id
		WHERE ic.status = 'used'
		  AND NOT (coalesce(u.paid_orders, 0) = 1
		           AND EXISTS (SELECT FROM commerce.orders o WHERE o.id = ic.order_id AND o.status = 'paid'
		                         AND o.user_id = ic.user_id AND o.issued_coupon_id = ic.id))
		UNION ALL
		SELECT format('paid order %s uses issued coupon %s of user %s, status %s, order_id %s',
		              o.id, ic.id, ic.user_id, ic.status, ic.order_id)
		FROM commerce.orders o JOIN commerce.issued_coupons ic ON ic.id = o.issued_coupon_id
		WHERE o.status = 'paid' AND NOT (ic.status = 'used' AND ic.order_id = o.id AND ic.user_id = o.user_id)
	) p
	UNION ALL
	SELECT 'one order per idempotency key (per user)',
	       count(*) = 0,
	       string_agg(format('user %s key %s: %s orders', user_id, idempotency_key, n), '; ')
	FROM (SELECT user_id, idempotency_key, count(*) AS n FROM commerce.orders
	      WHERE idempotency_key IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d
	UNION ALL
	SELECT 'every acknowledged order exists, for its user',
	       count(*) = 0, string_agg(format('order %s of user %s', a.order_id, a.user_id), '; ')
	FROM tap.acked a
	WHERE NOT EXISTS (SELECT FROM commerce.orders o WHERE o.id = a.order_id AND o.user_id = a.user_id)
	UNION ALL
	SELECT 'outbox: one event per placed order, per cancellation, per issued coupon',
	       (SELECT count(*) FROM commerce.outbox WHERE event_type = 'order_placed')
	         = (SELECT count(*) FROM commerce.orders)
	       AND (SELECT count(*) FROM commerce.outbox WHERE event_type = 'order_cancelled')
	         = (SELECT count(*) FROM commerce.orders WHERE status = 'cancelled')
	       AND (SELECT count(*) FROM commerce.outbox WHERE event_type = 'coupon_issued')
	         = (SELECT count(*) FROM commerce.issued_coupons)
	       AND NOT EXISTS (SELECT FROM commerce.outbox GROUP BY event_type, aggregate_id HAVING count(*) > 1),
	       NULL
)
SELECT name, ok, left(coalesce(detail, ''), 500) FROM checks;
