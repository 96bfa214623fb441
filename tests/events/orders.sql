\set u random(1, 200000)
\set p random(1, 50)
SELECT order_id FROM commerce.place_order(:u, jsonb_build_array(jsonb_build_object('product_id', :p::bigint, 'quantity', 1)));
