-- mixed: every order the clients were told about is stored (the general
-- invariants do the rest); report how much was written.
\set ON_ERROR_STOP 1
SELECT 'mixed: acknowledged orders stored' AS name,
       (SELECT count(*) FROM invariant_input.acked_orders a JOIN commerce.orders o ON o.id = a.order_id)
         = (SELECT count(*) FROM invariant_input.acked_orders) AS ok,
       format('%s orders acknowledged, %s stored, %s coupons issued',
              (SELECT count(*) FROM invariant_input.acked_orders), (SELECT count(*) FROM commerce.orders),
              (SELECT count(*) FROM commerce.issued_coupons)) AS detail;
