/*
 * statements.h
 *      The one list of SQL statements commerce-http prepares.
 *
 * Every connection prepares all of them right after it connects (and again
 * after every reconnect), so a REST call is always one Bind/Execute/Sync of
 * a statement known by name.  The columns are aliased to the snake_case
 * names the JSON encoder turns into camelCase keys; timestamps are rendered
 * through to_json so clients get ISO 8601 rather than DateStyle output.
 *
 * Every function, operator and type is named with its schema (pg_catalog.,
 * commerce.): an unqualified name is resolved through the search_path, and a
 * better-matching function another role created earlier on it (say
 * public.to_json(timestamptz) beside pg_catalog's polymorphic to_json) would
 * run with this daemon's rights.  db.c also pins the session's search_path.
 * (coalesce is SQL syntax, not a function: it takes no schema.)
 *
 * X(NAME, "sql", nparams)
 */
#ifndef COMMERCE_HTTP_STATEMENTS_H
#define COMMERCE_HTTP_STATEMENTS_H

/* a timestamptz column as ISO 8601 text (NULL stays NULL) */
#define ISO_TIME(column) "pg_catalog.to_json(" column ") OPERATOR(pg_catalog.#>>) '{}'"

/* an order as GET /api/orders/{id} and the order listing answer it */
#define ORDER_COLUMNS \
	"SELECT order_id, user_id, status, total_amount, discount_amount, paid_amount, " \
	"coupon_id, issued_coupon_id, " \
	ISO_TIME("created_at") " AS created_at, " \
	ISO_TIME("cancelled_at") " AS cancelled_at, " \
	"coalesce(items, '[]'::pg_catalog.jsonb) AS items "

#define DB_STATEMENT_TABLE(X) \
	X(PING, "SELECT 1 AS ok", 0) \
	X(GET_PRODUCT, \
	  "SELECT id, name, category, price, stock FROM commerce.get_product($1)", 1) \
	X(LIST_PRODUCTS, \
	  "SELECT id, name, category, price, stock FROM commerce.list_products($1, $2, $3, $4)", 4) \
	X(POPULAR_PRODUCTS, \
	  "SELECT product_id, name, quantity_sold FROM commerce.popular_products($1, $2)", 2) \
	X(PLACE_ORDER, \
	  "SELECT order_id, status, total_amount, discount_amount, paid_amount " \
	  "FROM commerce.place_order($1, $2::pg_catalog.jsonb, $3, $4)", 4) \
	X(GET_ORDER, \
	  ORDER_COLUMNS \
	  "FROM commerce.get_order($1) " \
	  "WHERE $2::pg_catalog.int8 IS NULL OR user_id OPERATOR(pg_catalog.=) $2", 2) \
	/* a coupon just issued is "issued" (commerce.issued_coupons.status) */ \
	X(ISSUE_COUPON, \
	  "SELECT commerce.issue_coupon($1, $2) AS issued_coupon_id, $2::pg_catalog.int8 AS coupon_id, " \
	  "$1::pg_catalog.int8 AS user_id, 'issued'::pg_catalog.text AS status", 2) \
	X(USER_COUPONS, \
	  "SELECT issued_coupon_id, coupon_id, code, name, status, discount_type, discount_value, " \
	  "max_discount, min_order_amount, " \
	  ISO_TIME("valid_until") " AS valid_until, " \
	  ISO_TIME("issued_at") " AS issued_at, " \
	  ISO_TIME("used_at") " AS used_at, order_id " \
	  "FROM commerce.user_coupons($1)", 1) \
	X(ISSUE_COUPON_BY_CODE, \
	  "SELECT issued_coupon_id, coupon_id, $1::pg_catalog.int8 AS user_id, 'issued'::pg_catalog.text AS status " \
	  "FROM commerce.issue_coupon_by_code($1, $2)", 2) \
	X(USER_ORDERS, \
	  ORDER_COLUMNS \
	  "FROM commerce.user_orders($1, $2, $3)", 3) \
	X(KEYED_CALL, \
	  "SELECT status, body, replayed FROM commerce.keyed_call($1, $2, $3, $4::pg_catalog.jsonb)", 4) \
	X(GET_BALANCE, "SELECT $1::pg_catalog.int8 AS user_id, commerce.get_balance($1) AS balance", 1) \
	/* where the WAL stands, in bytes: replica.c compares the two to bound a standby's lag */ \
	X(PRIMARY_WAL_POSITION, \
	  "SELECT (pg_catalog.pg_current_wal_insert_lsn() OPERATOR(pg_catalog.-) '0/0'::pg_catalog.pg_lsn)" \
	  "::pg_catalog.int8 AS wal_position", 0) \
	X(STANDBY_WAL_POSITION, \
	  "SELECT (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() " \
	  "ELSE pg_catalog.pg_current_wal_lsn() END OPERATOR(pg_catalog.-) '0/0'::pg_catalog.pg_lsn)" \
	  "::pg_catalog.int8 AS wal_position", 0) \
	/* the operator routes' writes, run only on the --operator-db pool */ \
	X(OPERATOR_CALL, \
	  "SELECT status, body, replayed FROM commerce.operator_call($1, $2, $3, $4::pg_catalog.jsonb)", 4)

typedef enum db_statement {
#define DB_STATEMENT_ENUM(name, sql, nparams) DB_STMT_##name,
	DB_STATEMENT_TABLE(DB_STATEMENT_ENUM)
#undef DB_STATEMENT_ENUM
	DB_STMT__COUNT
} db_statement_t;

#endif
