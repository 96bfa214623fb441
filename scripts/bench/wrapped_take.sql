SELECT bench.flood_take(:product);
