-- Products and stock buckets: stock is the sum of the buckets, never negative.
\set SHOW_CONTEXT never

SELECT commerce.create_product('Keyboard', 30000, 10, 'pc') AS kbd;
SELECT commerce.create_product('Mouse', 10000, 5, 'pc', 2) AS mouse;
SELECT commerce.create_product('Tea', 4000, 0, 'food', 1) AS tea;
SELECT commerce.create_product('Hot item', 1000, 100, NULL, 16) AS hot;

SELECT product_id, count(*) AS buckets, sum(quantity) AS stock, min(quantity), max(quantity)
FROM commerce.stock_buckets GROUP BY product_id ORDER BY product_id;

SELECT * FROM commerce.get_product(1);
SELECT * FROM commerce.get_product(999);
SELECT * FROM commerce.list_products();
SELECT * FROM commerce.list_products(category => 'pc');
SELECT * FROM commerce.list_products(keyword => 'OUS');
SELECT * FROM commerce.list_products(lim => 2);
SELECT * FROM commerce.list_products(lim => 2, after_id => 2);
SELECT * FROM commerce.list_products(lim => 0);

-- decrement_stock returns what is left
SELECT commerce.decrement_stock(2, 2);
SELECT commerce.decrement_stock(2, 3);
SELECT commerce.decrement_stock(2, 1);
-- a multi-unit take may span buckets
SELECT commerce.decrement_stock(1, 10);
SELECT commerce.decrement_stock(3, 1);
SELECT commerce.decrement_stock(999, 1);
SELECT commerce.decrement_stock(1, 0);
SELECT commerce.decrement_stock(1, NULL);

-- restock spreads the units over every bucket
SELECT commerce.restock(2, 7);
SELECT bucket, quantity FROM commerce.stock_buckets WHERE product_id = 2 ORDER BY bucket;
SELECT commerce.restock(2, 0);
SELECT commerce.restock(999, 1);
SELECT commerce.restock(2, 2147483647);

-- bad product definitions
SELECT commerce.create_product('', 1, 1);
SELECT commerce.create_product('x', -1, 1);
SELECT commerce.create_product('x', 1, -1);
SELECT commerce.create_product('x', 1, 1, NULL, 0);
SELECT commerce.create_product('x', 1, 1, repeat('c', 101));
