/*
 * pg_commerce 0.1.0 -> 0.2.0
 *
 * The bucket tables keep 90% of each page free for the new versions of
 * their rows (see the comment at commerce.stock_buckets in the install
 * script).  Pages are pruned by the new setting at once; buckets that exist
 * already keep their pages until the table is rewritten, which an operator
 * may do at a quiet moment with
 *   VACUUM FULL commerce.stock_buckets; VACUUM FULL commerce.coupon_buckets;
 * (it cannot run here: ALTER EXTENSION runs in a transaction block).
 *
 * 0.2.0 also reads rows by key without the executor in the hot paths; that is
 * in the shared library, which serves both versions' SQL unchanged.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_commerce UPDATE TO '0.2.0'" to load this file. \quit

ALTER TABLE commerce.stock_buckets SET (fillfactor = 10);
ALTER TABLE commerce.coupon_buckets SET (fillfactor = 10);
