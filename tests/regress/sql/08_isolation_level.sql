-- The functions that take buckets run at READ COMMITTED only: at REPEATABLE
-- READ or SERIALIZABLE each refuses with READ_COMMITTED_REQUIRED before it
-- reads or locks anything.  READ UNCOMMITTED is READ COMMITTED in PostgreSQL.
\set SHOW_CONTEXT never
\set VERBOSITY default

BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT commerce.issue_coupon(1, 1);
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT * FROM commerce.place_order(1, '[{"product_id": 2, "quantity": 1}]');
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT commerce.decrement_stock(2, 1);
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT commerce.restock(2, 1);
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT commerce.cancel_order(1, 1);
ROLLBACK;
-- the error's SQLSTATE is the extension's (class PC)
SELECT sqlstate, http_status FROM commerce.error_codes() WHERE code = 'READ_COMMITTED_REQUIRED';

-- a database whose default is another level: every call says so
SET default_transaction_isolation = 'repeatable read';
SELECT commerce.decrement_stock(2, 1);
RESET default_transaction_isolation;

-- READ COMMITTED and READ UNCOMMITTED work, and nothing was changed above
SELECT (SELECT sum(quantity) FROM commerce.stock_buckets WHERE product_id = 2) AS stock_before \gset
BEGIN ISOLATION LEVEL READ UNCOMMITTED;
SELECT commerce.decrement_stock(2, 1) = :stock_before - 1 AS took_one;
ROLLBACK;
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT commerce.restock(2, 1) = :stock_before + 1 AS restocked_one;
ROLLBACK;
