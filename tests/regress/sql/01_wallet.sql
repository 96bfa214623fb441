-- Users and wallets: the balance moves only with a ledger entry, never below 0.
\set SHOW_CONTEXT never
CREATE EXTENSION pg_commerce;

SELECT commerce.create_user('alice') AS alice, commerce.create_user('bob') AS bob;
SELECT commerce.get_balance(1);
SELECT commerce.charge_balance(1, 50000);
SELECT commerce.charge_balance(1, 25000);
SELECT commerce.get_balance(1);

-- bad input names the field
SELECT commerce.create_user('');
SELECT commerce.charge_balance(1, 0);
SELECT commerce.charge_balance(1, -5);
SELECT commerce.charge_balance(99, 100);
SELECT commerce.get_balance(99);
-- the wallet ceiling (pg_commerce.max_balance): reaching it exactly is
-- allowed, one more is refused with its own error, and no amount wraps
SHOW pg_commerce.max_balance;
SELECT commerce.max_balance();
BEGIN;
SET LOCAL pg_commerce.max_balance = '1000';
SELECT commerce.charge_balance(2, 1000);
SELECT commerce.charge_balance(2, 1);
ROLLBACK;
BEGIN;
SET LOCAL pg_commerce.max_balance = '9223372036854775807';
SELECT commerce.charge_balance(2, 9223372036854775807);
SELECT commerce.charge_balance(2, 1);
ROLLBACK;
SELECT commerce.charge_balance(2, 9223372036854775807);
SELECT commerce.get_balance(2);
-- the setting takes integers from 1 to bigint's maximum only
SET pg_commerce.max_balance = '0';
SET pg_commerce.max_balance = '9223372036854775808';
SET pg_commerce.max_balance = '1e6';
SET pg_commerce.max_balance = '';
SHOW pg_commerce.max_balance;

-- balance = sum of ledger
SELECT u.id, u.balance, (SELECT sum(amount) FROM commerce.wallet_ledger l WHERE l.user_id = u.id) AS ledger_sum
FROM commerce.users u ORDER BY u.id;
