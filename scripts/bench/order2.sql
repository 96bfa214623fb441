\set p1 random(1, :products)
\set p2 random(1, :products)
SELECT order_id FROM commerce.place_order(nextval('bench.uid'), jsonb_build_array(jsonb_build_object('product_id', :p1::bigint, 'quantity', 1), jsonb_build_object('product_id', :p2::bigint, 'quantity', 1)), :coupon);
