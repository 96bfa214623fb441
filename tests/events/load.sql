\set u random(1, 200000)
\set p random(1, 50)
\set r random(1, 100)
SELECT events.step(:u, :p, :r);
