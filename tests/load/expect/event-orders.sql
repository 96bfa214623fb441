-- event-orders: every user ordered once with the event coupon, and was told so.
\set ON_ERROR_STOP 1
WITH f AS (SELECT max(value) FILTER (WHERE key = 'USERS') AS users,
                  max(value) FILTER (WHERE key = 'FIRST_USER') AS first_user,
                  max(value) FILTER (WHERE key = 'COUPON') AS coupon
           FROM loadtest.fixture),
o AS (SELECT count(*) AS orders, count(DISTINCT o.user_id) AS buyers,
             count(*) FILTER (WHERE o.discount_amount > 0 AND ic.coupon_id = f.coupon) AS with_coupon
      FROM f, commerce.orders o LEFT JOIN commerce.issued_coupons ic ON ic.id = o.issued_coupon_id
      WHERE o.user_id BETWEEN f.first_user AND f.first_user + f.users - 1 AND o.status = 'paid'),
a AS (SELECT count(DISTINCT order_id) AS acked FROM invariant_input.acked_orders)
          SELECT 'event: one paid order per user' AS name, o.orders = f.users AND o.buyers = f.users AS ok,
                 format('%s orders by %s of %s users', o.orders, o.buyers, f.users) AS detail FROM f, o
UNION ALL SELECT 'event: every order used the coupon', o.with_coupon = f.users,
                 format('%s of %s orders discounted by the event coupon', o.with_coupon, f.users) FROM f, o
UNION ALL SELECT 'event: every order acknowledged', a.acked = f.users,
                 format('%s of %s orders answered 201', a.acked, f.users) FROM f, a;
