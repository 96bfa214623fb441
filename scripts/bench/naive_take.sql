SELECT bench.naive_take(:product);
