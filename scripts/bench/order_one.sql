SELECT order_id FROM commerce.place_order(nextval('bench.uid'), jsonb_build_array(jsonb_build_object('product_id', :product::bigint, 'quantity', 1)));
