SELECT bench.flood_naive_take(:product);
