\set v random(1, 1000000)
INSERT INTO bench.sink (v) VALUES (:v);
