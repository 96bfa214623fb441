/*
 * routes.h
 *      The route table: method, path pattern, handler and the label the
 *      metrics and logs use.  A leaf: the files below the dispatcher (call.c,
 *      metrics.c) read the ids and labels without depending on router.c.  "{id}" matches one path segment, which the handler
 *      validates; literal routes are listed before patterns they shadow.
 *
 * X(NAME, "METHOD", "/path/{id}", handler, ACCESS, READS)
 *
 * ACCESS is OPEN for the probes an orchestrator and a scraper call without
 * credentials, TOKEN for every /api route: with --auth jwt the router
 * answers 401 before the handler runs unless the request carries a valid
 * bearer token (auth.h), and the handler acts for the token's user.  ADMIN
 * routes also need the token's role "admin" (403 otherwise) and run on the
 * --operator-db pool (403 when there is none).
 *
 * READS is STANDBY for the catalogue reads, which any shopper may see a
 * moment late: with --db-read they run on the standby while it is close
 * behind (replica.h).  PRIMARY for the rest: writes, and a user's own
 * orders, balance and coupons, read where they were just written.
 */
#ifndef COMMERCE_HTTP_ROUTES_H
#define COMMERCE_HTTP_ROUTES_H

#define ROUTE_TABLE(X) \
	X(ORDERS_CREATE, "POST", "/api/orders", handle_orders_create, TOKEN, PRIMARY) \
	X(ORDERS_GET, "GET", "/api/orders/{id}", handle_orders_get, TOKEN, PRIMARY) \
	X(ORDERS_CANCEL, "POST", "/api/orders/{id}/cancel", handle_orders_cancel, TOKEN, PRIMARY) \
	X(COUPONS_ISSUE, "POST", "/api/coupons/issue", handle_coupons_issue, TOKEN, PRIMARY) \
	X(USER_COUPONS, "GET", "/api/users/{id}/coupons", handle_user_coupons, TOKEN, PRIMARY) \
	X(PRODUCTS_LIST, "GET", "/api/products", handle_products_list, TOKEN, STANDBY) \
	X(PRODUCTS_POPULAR, "GET", "/api/products/popular", handle_products_popular, TOKEN, STANDBY) \
	X(PRODUCTS_GET, "GET", "/api/products/{id}", handle_products_get, TOKEN, STANDBY) \
	X(BALANCE_GET, "GET", "/api/users/{id}/balance", handle_balance_get, TOKEN, PRIMARY) \
	X(BALANCE_CHARGE, "POST", "/api/users/{id}/balance/charge", handle_balance_charge, TOKEN, PRIMARY) \
	X(USER_ORDERS, "GET", "/api/users/{id}/orders", handle_user_orders, TOKEN, PRIMARY) \
	X(ADMIN_USERS_CREATE, "POST", "/api/admin/users", handle_admin_users_create, ADMIN, PRIMARY) \
	X(ADMIN_PRODUCTS_CREATE, "POST", "/api/admin/products", handle_admin_products_create, ADMIN, PRIMARY) \
	X(ADMIN_PRODUCTS_RESTOCK, "POST", "/api/admin/products/{id}/restock", handle_admin_products_restock, ADMIN, PRIMARY) \
	X(ADMIN_COUPONS_CREATE, "POST", "/api/admin/coupons", handle_admin_coupons_create, ADMIN, PRIMARY) \
	X(HEALTHZ, "GET", "/healthz", handle_healthz, OPEN, PRIMARY) \
	X(READYZ, "GET", "/readyz", handle_readyz, OPEN, PRIMARY) \
	X(METRICS, "GET", "/metrics", handle_metrics, OPEN, PRIMARY)

typedef enum route_access {
	ROUTE_ACCESS_OPEN,
	ROUTE_ACCESS_TOKEN,
	ROUTE_ACCESS_ADMIN
} route_access_t;

typedef enum route_reads {
	ROUTE_READS_PRIMARY,
	ROUTE_READS_STANDBY
} route_reads_t;

typedef enum route_id {
#define ROUTE_ENUM(name, method, pattern, handler, access, reads) ROUTE_##name,
	ROUTE_TABLE(ROUTE_ENUM)
#undef ROUTE_ENUM
	ROUTE_UNMATCHED,
	ROUTE__COUNT
} route_id_t;

extern const char *const route_labels[ROUTE__COUNT];

#endif
