SELECT 1 / (nextval('bench.uid') * 0);
