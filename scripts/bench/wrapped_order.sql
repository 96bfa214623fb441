SELECT bench.flood_order(nextval('bench.uid'), :product);
