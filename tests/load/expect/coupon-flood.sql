-- coupon-flood: exactly min(users, quantity) coupons issued, one per user,
-- and exactly those were acknowledged to the clients.
\set ON_ERROR_STOP 1
WITH f AS (SELECT max(value) FILTER (WHERE key = 'USERS') AS users,
                  max(value) FILTER (WHERE key = 'QUANTITY') AS quantity,
                  max(value) FILTER (WHERE key = 'COUPON') AS coupon
           FROM loadtest.fixture),
i AS (SELECT count(*) AS issued, count(DISTINCT ic.user_id) AS holders
      FROM f, commerce.issued_coupons ic WHERE ic.coupon_id = f.coupon),
a AS (SELECT count(*) AS acked, count(DISTINCT a.user_id) AS acked_users,
             count(*) FILTER (WHERE ic.id IS NULL OR ic.user_id <> a.user_id OR ic.coupon_id <> a.coupon_id) AS wrong
      FROM loadtest.acked_coupons a LEFT JOIN commerce.issued_coupons ic ON ic.id = a.issued_coupon_id)
          SELECT 'flood: issued = min(users, quantity)' AS name, i.issued = least(f.users, f.quantity) AS ok,
                 format('%s issued to %s users; %s users asked for %s coupons', i.issued, i.holders,
                        f.users, f.quantity) AS detail FROM f, i
UNION ALL SELECT 'flood: no coupons left', (SELECT coalesce(sum(b.quantity), 0) FROM commerce.coupon_buckets b, f
                                             WHERE b.coupon_id = f.coupon) = greatest(f.quantity - f.users, 0),
                 format('%s left', (SELECT coalesce(sum(b.quantity), 0) FROM commerce.coupon_buckets b
                                    WHERE b.coupon_id = f.coupon)) FROM f
UNION ALL SELECT 'flood: every 201 is an issued coupon', a.acked = i.issued AND a.acked_users = i.issued AND a.wrong = 0,
                 format('%s answered 201 to %s users, %s not matching the table', a.acked, a.acked_users, a.wrong)
          FROM a, i;
