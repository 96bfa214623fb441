/*
 * handlers.c
 *      Validate, then one prepared statement per call; the rows become the
 *      response through call->on_rows.  docs/openapi.yaml fixes the shapes.
 */
#include "handlers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "validate.h"

typedef char int_text_t[24];

static const char *
int_text(int_text_t buf, int64_t n)
{
	snprintf(buf, sizeof(int_text_t), "%" PRId64, n);
	return buf;
}

/* Idempotency-Key: 1..COMMERCE_MAX_IDEMPOTENCY_KEY visible ASCII characters; NULL when absent. */
static int
idempotency_key(call_t *call, char *out)
{
	h2o_req_t *req = call->req;
	ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), -1);
	h2o_iovec_t v;

	if (at < 0)
		return FIELD_ABSENT;
	if (h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), at) >= 0) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "Idempotency-Key: given more than once");
		return FIELD_ANSWERED;
	}
	v = req->headers.entries[at].value;
	if (v.len < 1 || v.len > COMMERCE_MAX_IDEMPOTENCY_KEY) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "Idempotency-Key must be 1 to %d characters",
					COMMERCE_MAX_IDEMPOTENCY_KEY);
		return FIELD_ANSWERED;
	}
	for (size_t i = 0; i < v.len; i++)
		if (v.base[i] < 0x21 || v.base[i] > 0x7e) {
			call_refuse(call, COMMERCE_INVALID_ARGUMENT, "Idempotency-Key must be visible ASCII");
			return FIELD_ANSWERED;
		}
	memcpy(out, v.base, v.len);
	out[v.len] = '\0';
	return FIELD_OK;
}

/*
 * An order sent without Idempotency-Key gets one from the daemon, sent back
 * in the answer's Idempotency-Key header (also on a 503 or 504), so that a
 * client told "outcome unknown" can retry without paying twice.  (A client
 * whose connection drops gets no header: it must send its own key to retry
 * safely.)  The key is "auto-" and 128 random bits.  GRND_NONBLOCK: getrandom() never blocks once
 * the kernel's pool is initialised; if it would, the call is refused.
 */
static int
generate_idempotency_key(call_t *call, char *out)
{
	unsigned char bits[16];

	if (getrandom(bits, sizeof(bits), GRND_NONBLOCK) != (ssize_t) sizeof(bits)) {
		call_refuse(call, COMMERCE_UNAVAILABLE, "cannot generate an Idempotency-Key now; send one");
		return FIELD_ANSWERED;
	}
	strcpy(out, "auto-");
	for (size_t i = 0; i < sizeof(bits); i++)
		snprintf(out + 5 + 2 * i, 3, "%02x", bits[i]);
	return FIELD_OK;
}

/*
 * Ownership.  With a token a customer acts as its sub only: a request that
 * names another user is 403 (an operator, role admin, may name anyone).
 * Another user's order is answered like an order that does not exist (404),
 * so that order ids tell nothing about other people's orders.
 */
static int
may_act_for(call_t *call, int64_t user_id, const char *field)
{
	if (!call->caller.authenticated || call->caller.is_admin || call->caller.user_id == user_id)
		return FIELD_OK;
	call_refuse(call, COMMERCE_FORBIDDEN, "%s: %" PRId64 " is not the user of this token", field, user_id);
	return FIELD_ANSWERED;
}

/* The body's userId, which may be left out when a token names the user. */
static int
acting_user(call_t *call, json_t *body, int64_t *user_id)
{
	int has = validate_id(call, body, "userId", !call->caller.authenticated, user_id);

	if (has == FIELD_ANSWERED)
		return FIELD_ANSWERED;
	if (has == FIELD_ABSENT) {
		*user_id = call->caller.user_id;
		return FIELD_OK;
	}
	return may_act_for(call, *user_id, "userId");
}

/* A {userId} path segment, which must be the caller's own. */
static int
path_user(call_t *call, h2o_iovec_t id, int64_t *user_id)
{
	if (validate_path_id(call, id, "userId", user_id) == FIELD_ANSWERED)
		return FIELD_ANSWERED;
	return may_act_for(call, *user_id, "userId");
}

/* The caller whose rows a statement may return, as its text; NULL: anyone's. */
static const char *
owner_filter(call_t *call, int_text_t buf)
{
	if (!call->caller.authenticated || call->caller.is_admin)
		return NULL;
	return int_text(buf, call->caller.user_id);
}

/*
 * Idempotency.  With the client's Idempotency-Key a write runs through
 * commerce.keyed_call (customers) or commerce.operator_call (operators),
 * which store the first final answer (2xx or 4xx) with its effect, in one
 * transaction, and give it back to every later request with the key
 * (Idempotent-Replayed: true).  Orders, charges and cancels move money and
 * get a generated key when they come without one, sent back in the
 * Idempotency-Key header; a charge or a cancel runs through keyed_call
 * with it, an order through place_order's own key on the order (a retry
 * finds a committed order, a refusal is not stored): a flash sale's 4,900
 * refused orders and 9,000 refused coupon issues would otherwise each write
 * and flush a row.  A coupon issue is keyed only when the client sends a
 * key.  *generated (when not NULL) tells which key the caller got.
 */
static int
call_key(call_t *call, int generate, char *out, int *generated)
{
	int has = idempotency_key(call, out);

	if (generated != NULL)
		*generated = has == FIELD_ABSENT && generate;
	if (has == FIELD_ABSENT && generate)
		has = generate_idempotency_key(call, out);
	if (has == FIELD_OK)
		call->idempotency_key = h2o_strdup(&call->req->pool, out, SIZE_MAX).base;
	return has;
}

/*
 * Runs operation(args) under key (NULL: unkeyed, operator_call only) for
 * user_id, through statement (DB_STMT_KEYED_CALL or DB_STMT_OPERATOR_CALL);
 * args is stolen.
 */
static void
keyed_query(call_t *call, db_statement_t statement, int64_t user_id, const char *key,
			const char *operation, json_t *args)
{
	int_text_t user_text;
	const char *values[4];
	char *args_text = args != NULL ? json_dumps(args, JSON_COMPACT) : NULL;

	json_decref(args);
	if (args_text == NULL) {
		call_refuse(call, COMMERCE_UNAVAILABLE, "out of memory");
		return;
	}
	values[0] = int_text(user_text, user_id);
	values[1] = key;
	values[2] = operation;
	values[3] = args_text;
	call->on_rows = rows_reply_keyed;
	call_query(call, statement, 4, values);
	free(args_text);
}

/* Appends {"product_id":…,"quantity":…} for one validated item. */
static int
take_item(call_t *call, json_t *src, json_t *items, const char *where)
{
	int64_t product_id, quantity;

	if (validate_item(call, src, where, &product_id, &quantity) == FIELD_ANSWERED)
		return FIELD_ANSWERED;
	json_array_append_new(items, json_pack("{s:I,s:I}", "product_id", (json_int_t) product_id,
										   "quantity", (json_int_t) quantity));
	return FIELD_OK;
}

void
handle_orders_create(call_t *call, h2o_iovec_t id)
{
	static const char *const keys[] = {"userId", "items", "productId", "quantity", "couponId", NULL};
	char key[COMMERCE_MAX_IDEMPOTENCY_KEY + 1];
	int_text_t user_text, coupon_text;
	int64_t user_id, coupon_id;
	const char *values[4];
	json_t *body, *items = NULL;
	char *items_text;
	int has_coupon, generated;

	(void) id;
	if (call_key(call, 1, key, &generated) == FIELD_ANSWERED)
		return;
	if ((body = validate_body(call, keys)) == NULL)
		return;
	if (acting_user(call, body, &user_id) == FIELD_ANSWERED ||
		(has_coupon = validate_id(call, body, "couponId", 0, &coupon_id)) == FIELD_ANSWERED)
		goto done;

	items = json_array();
	if (json_object_get(body, "items") != NULL) {
		json_t *list = json_object_get(body, "items");
		size_t i;
		json_t *item;

		if (json_object_get(body, "productId") != NULL || json_object_get(body, "quantity") != NULL) {
			call_refuse(call, COMMERCE_INVALID_ARGUMENT, "items: give either items or productId/quantity, not both");
			goto done;
		}
		if (!json_is_array(list) || json_array_size(list) < 1 || json_array_size(list) > COMMERCE_MAX_ORDER_LINES) {
			call_refuse(call, COMMERCE_INVALID_ARGUMENT, "items must be an array of 1 to %d items",
						COMMERCE_MAX_ORDER_LINES);
			goto done;
		}
		json_array_foreach(list, i, item) {
			char where[32];

			snprintf(where, sizeof(where), "items[%zu]", i);
			if (take_item(call, item, items, where) == FIELD_ANSWERED)
				goto done;
		}
	} else {
		json_t *single = json_object();

		if (json_object_get(body, "productId") == NULL) {
			json_decref(single);
			call_refuse(call, COMMERCE_INVALID_ARGUMENT, "items is required (or productId and quantity)");
			goto done;
		}
		json_object_set(single, "productId", json_object_get(body, "productId"));
		if (json_object_get(body, "quantity") != NULL)
			json_object_set(single, "quantity", json_object_get(body, "quantity"));
		if (take_item(call, single, items, "order") == FIELD_ANSWERED) {
			json_decref(single);
			goto done;
		}
		json_decref(single);
	}
	if (!generated) {
		/* the client's key: the first answer is stored, a refusal included */
		keyed_query(call, DB_STMT_KEYED_CALL, user_id, key, "place_order",
					json_pack("{s:O,s:o}", "items", items, "coupon_id",
							  has_coupon == FIELD_OK ? json_integer(coupon_id) : json_null()));
		goto done;
	}
	if ((items_text = json_dumps(items, JSON_COMPACT)) == NULL) {
		call_refuse(call, COMMERCE_UNAVAILABLE, "out of memory");
		goto done;
	}
	values[0] = int_text(user_text, user_id);
	values[1] = items_text;
	values[2] = has_coupon == FIELD_OK ? int_text(coupon_text, coupon_id) : NULL;
	values[3] = key;			/* generated: stored on the order if it is placed */
	call->on_rows = rows_reply_single;
	call->ok_status = 201;
	call_query(call, DB_STMT_PLACE_ORDER, 4, values);
	free(items_text);
done:
	json_decref(items);
	json_decref(body);
}

void
handle_orders_get(call_t *call, h2o_iovec_t id)
{
	int_text_t order_text, owner_text;
	int64_t order_id;
	const char *values[2];

	if (validate_path_id(call, id, "orderId", &order_id) == FIELD_ANSWERED)
		return;
	values[0] = int_text(order_text, order_id);
	values[1] = owner_filter(call, owner_text);
	/* the database's own words for an order that does not exist */
	call->not_found = "order not found";
	call->on_rows = rows_reply_single;
	call_query(call, DB_STMT_GET_ORDER, 2, values);
}

void
handle_orders_cancel(call_t *call, h2o_iovec_t id)
{
	static const char *const keys[] = {"userId", NULL};
	char key[COMMERCE_MAX_IDEMPOTENCY_KEY + 1];
	int64_t order_id, user_id;
	json_t *body;

	if (validate_path_id(call, id, "orderId", &order_id) == FIELD_ANSWERED ||
		call_key(call, 1, key, NULL) == FIELD_ANSWERED)
		return;
	if ((body = validate_body(call, keys)) == NULL)
		return;
	if (acting_user(call, body, &user_id) != FIELD_ANSWERED)
		keyed_query(call, DB_STMT_KEYED_CALL, user_id, key, "cancel_order",
					json_pack("{s:I}", "order_id", (json_int_t) order_id));
	json_decref(body);
}

/* {couponCode} instead of {couponId}: the code is how customers know a coupon */
static void
issue_coupon_by_code(call_t *call, json_t *body, int64_t user_id, const char *key)
{
	int_text_t user_text;
	const char *values[2];

	if (json_object_get(body, "couponId") != NULL) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "couponCode: give either couponId or couponCode, not both");
		return;
	}
	if (validate_text(call, body, "couponCode", 1, 1, COMMERCE_MAX_COUPON_CODE, &values[1]) == FIELD_ANSWERED)
		return;
	if (key != NULL) {
		keyed_query(call, DB_STMT_KEYED_CALL, user_id, key, "issue_coupon_by_code", json_pack("{s:s}", "code", values[1]));
		return;
	}
	values[0] = int_text(user_text, user_id);
	call->coupon_user_id = user_id;
	call->on_rows = rows_reply_single;
	call->ok_status = 201;
	call_query(call, DB_STMT_ISSUE_COUPON_BY_CODE, 2, values);
}

void
handle_coupons_issue(call_t *call, h2o_iovec_t id)
{
	static const char *const keys[] = {"userId", "couponId", "couponCode", NULL};
	char key_buf[COMMERCE_MAX_IDEMPOTENCY_KEY + 1];
	const char *key;
	int_text_t user_text, coupon_text;
	int64_t user_id, coupon_id;
	const char *values[2];
	json_t *body;
	int has_key;

	(void) id;
	if ((has_key = call_key(call, 0, key_buf, NULL)) == FIELD_ANSWERED)
		return;
	key = has_key == FIELD_OK ? key_buf : NULL;
	if ((body = validate_body(call, keys)) == NULL)
		return;
	if (acting_user(call, body, &user_id) == FIELD_ANSWERED) {
		json_decref(body);
		return;
	}
	if (json_object_get(body, "couponCode") != NULL) {
		issue_coupon_by_code(call, body, user_id, key);
		json_decref(body);
		return;
	}
	if (validate_id(call, body, "couponId", 1, &coupon_id) == FIELD_ANSWERED) {
		/* answered: 400 naming couponId */
	} else if (key != NULL) {
		keyed_query(call, DB_STMT_KEYED_CALL, user_id, key, "issue_coupon",
					json_pack("{s:I}", "coupon_id", (json_int_t) coupon_id));
	} else {
		values[0] = int_text(user_text, user_id);
		values[1] = int_text(coupon_text, coupon_id);
		call->coupon_user_id = user_id;
		call->coupon_id = coupon_id;
		call->on_rows = rows_reply_single;
		call->ok_status = 201;
		call_query(call, DB_STMT_ISSUE_COUPON, 2, values);
	}
	json_decref(body);
}

/* A read of the path's user's own data: one statement taking the user's id. */
static void
user_read(call_t *call, h2o_iovec_t id, db_statement_t stmt, call_on_rows on_rows)
{
	int_text_t user_text;
	int64_t user_id;
	const char *values[1];

	if (path_user(call, id, &user_id) == FIELD_ANSWERED)
		return;
	values[0] = int_text(user_text, user_id);
	call->on_rows = on_rows;
	call_query(call, stmt, 1, values);
}

void
handle_user_coupons(call_t *call, h2o_iovec_t id)
{
	user_read(call, id, DB_STMT_USER_COUPONS, rows_reply_list);
}

void
handle_products_list(call_t *call, h2o_iovec_t id)
{
	query_param_t params[] = {{"category", 0, ""}, {"keyword", 0, ""}, {"limit", 0, ""}, {"after", 0, ""}};
	int_text_t limit_text, after_text;
	int64_t limit = 20, after = 0;
	int has_after;
	const char *values[4];

	(void) id;
	if (validate_query(call, params, 4) == FIELD_ANSWERED ||
		validate_query_text(call, &params[0]) == FIELD_ANSWERED ||
		validate_query_text(call, &params[1]) == FIELD_ANSWERED ||
		validate_query_integer(call, &params[2], 1, 100, &limit) == FIELD_ANSWERED ||
		(has_after = validate_query_integer(call, &params[3], 1, INT64_MAX, &after)) == FIELD_ANSWERED)
		return;
	values[0] = params[0].present ? params[0].value : NULL;
	values[1] = params[1].present ? params[1].value : NULL;
	values[2] = int_text(limit_text, limit);
	values[3] = has_after == FIELD_OK ? int_text(after_text, after) : NULL;
	call->on_rows = rows_reply_list;
	call->page_limit = (int) limit;
	call_query(call, DB_STMT_LIST_PRODUCTS, 4, values);
}

void
handle_products_popular(call_t *call, h2o_iovec_t id)
{
	query_param_t params[] = {{"days", 0, ""}, {"limit", 0, ""}};
	int_text_t days_text, limit_text;
	int64_t days = 3, limit = 5;
	const char *values[2];

	(void) id;
	if (validate_query(call, params, 2) == FIELD_ANSWERED ||
		validate_query_integer(call, &params[0], 1, 365, &days) == FIELD_ANSWERED ||
		validate_query_integer(call, &params[1], 1, 100, &limit) == FIELD_ANSWERED)
		return;
	values[0] = int_text(days_text, days);
	values[1] = int_text(limit_text, limit);
	call->on_rows = rows_reply_list;
	call_query(call, DB_STMT_POPULAR_PRODUCTS, 2, values);
}

void
handle_products_get(call_t *call, h2o_iovec_t id)
{
	int_text_t product_text;
	int64_t product_id;
	const char *values[1];

	if (validate_path_id(call, id, "productId", &product_id) == FIELD_ANSWERED)
		return;
	values[0] = int_text(product_text, product_id);
	call->on_rows = rows_reply_single;
	call_query(call, DB_STMT_GET_PRODUCT, 1, values);
}

void
handle_balance_get(call_t *call, h2o_iovec_t id)
{
	user_read(call, id, DB_STMT_GET_BALANCE, rows_reply_single);
}

void
handle_balance_charge(call_t *call, h2o_iovec_t id)
{
	static const char *const keys[] = {"amount", NULL};
	char key[COMMERCE_MAX_IDEMPOTENCY_KEY + 1];
	int64_t user_id, amount;
	json_t *body;

	if (path_user(call, id, &user_id) == FIELD_ANSWERED || call_key(call, 1, key, NULL) == FIELD_ANSWERED)
		return;
	if ((body = validate_body(call, keys)) == NULL)
		return;
	if (validate_integer(call, body, "amount", 1, 1, INT64_MAX, &amount) != FIELD_ANSWERED)
		keyed_query(call, DB_STMT_KEYED_CALL, user_id, key, "charge_balance",
					json_pack("{s:I}", "amount", (json_int_t) amount));
	json_decref(body);
}

void
handle_user_orders(call_t *call, h2o_iovec_t id)
{
	query_param_t params[] = {{"limit", 0, ""}, {"after", 0, ""}};
	int_text_t user_text, limit_text, after_text;
	int64_t user_id, limit = 20, after = 0;
	int has_after;
	const char *values[3];

	if (path_user(call, id, &user_id) == FIELD_ANSWERED ||
		validate_query(call, params, 2) == FIELD_ANSWERED ||
		validate_query_integer(call, &params[0], 1, 100, &limit) == FIELD_ANSWERED ||
		(has_after = validate_query_integer(call, &params[1], 1, INT64_MAX, &after)) == FIELD_ANSWERED)
		return;
	values[0] = int_text(user_text, user_id);
	values[1] = int_text(limit_text, limit);
	values[2] = has_after == FIELD_OK ? int_text(after_text, after) : NULL;
	call->on_rows = rows_reply_list;
	call->page_limit = (int) limit;
	call->page_key = "order_id";	/* newest first: the next page is below the last id */
	call_query(call, DB_STMT_USER_ORDERS, 3, values);
}

/* ---- operator routes (--operator-db) -------------------------------------- */

/*
 * An operator's write runs through commerce.operator_call, which shapes the
 * answer (the same with and without a key): under the client's
 * Idempotency-Key when it sends one, the keys being the operator's (the
 * token's sub; 0, anyone, with --auth none).  args is stolen.
 */
static void
operator_write(call_t *call, const char *operation, json_t *args)
{
	char key[COMMERCE_MAX_IDEMPOTENCY_KEY + 1];
	int has_key = call_key(call, 0, key, NULL);

	if (has_key == FIELD_ANSWERED) {
		json_decref(args);
		return;
	}
	keyed_query(call, DB_STMT_OPERATOR_CALL, call->caller.authenticated ? call->caller.user_id : 0,
				has_key == FIELD_OK ? key : NULL, operation, args);
}

/* an optional integer field as JSON: null when absent */
static json_t *
optional_integer(int has, int64_t value)
{
	return has == FIELD_OK ? json_integer(value) : json_null();
}

void
handle_admin_users_create(call_t *call, h2o_iovec_t id)
{
	static const char *const keys[] = {"name", NULL};
	const char *name;
	json_t *body;

	(void) id;
	if ((body = validate_body(call, keys)) == NULL)
		return;
	if (validate_text(call, body, "name", 1, 1, COMMERCE_MAX_NAME, &name) != FIELD_ANSWERED)
		operator_write(call, "create_user", json_pack("{s:s}", "name", name));
	json_decref(body);
}

void
handle_admin_products_create(call_t *call, h2o_iovec_t id)
{
	static const char *const keys[] = {"name", "price", "stock", "category", "buckets", NULL};
	int64_t price, stock, buckets;
	int has_buckets;
	const char *name, *category = NULL;
	json_t *body;

	(void) id;
	if ((body = validate_body(call, keys)) == NULL)
		return;
	if (validate_text(call, body, "name", 1, 1, COMMERCE_MAX_NAME, &name) != FIELD_ANSWERED &&
		validate_integer(call, body, "price", 1, 0, INT64_MAX, &price) != FIELD_ANSWERED &&
		validate_integer(call, body, "stock", 1, 0, INT32_MAX, &stock) != FIELD_ANSWERED &&
		validate_text(call, body, "category", 0, 1, COMMERCE_MAX_CATEGORY, &category) != FIELD_ANSWERED &&
		(has_buckets = validate_integer(call, body, "buckets", 0, 1, 1024, &buckets)) != FIELD_ANSWERED)
		operator_write(call, "create_product",
					   json_pack("{s:s,s:I,s:I,s:s?,s:o}", "name", name, "price", (json_int_t) price,
								 "stock", (json_int_t) stock, "category", category,
								 "buckets", optional_integer(has_buckets, buckets)));
	json_decref(body);
}

void
handle_admin_products_restock(call_t *call, h2o_iovec_t id)
{
	static const char *const keys[] = {"quantity", NULL};
	int64_t product_id, quantity;
	json_t *body;

	if (validate_path_id(call, id, "productId", &product_id) == FIELD_ANSWERED)
		return;
	if ((body = validate_body(call, keys)) == NULL)
		return;
	if (validate_integer(call, body, "quantity", 1, 1, INT32_MAX, &quantity) != FIELD_ANSWERED)
		operator_write(call, "restock", json_pack("{s:I,s:I}", "product_id", (json_int_t) product_id,
												  "quantity", (json_int_t) quantity));
	json_decref(body);
}

void
handle_admin_coupons_create(call_t *call, h2o_iovec_t id)
{
	static const char *const keys[] = {"code", "name", "discountType", "discountValue", "totalQuantity",
		"validFrom", "validUntil", "minOrderAmount", "maxDiscount", NULL};
	int64_t value, quantity, min_order, max_discount;
	int has_min, has_max;
	const char *code, *type, *valid_from = NULL, *valid_until = NULL, *name = NULL;
	json_t *body;

	(void) id;
	if ((body = validate_body(call, keys)) == NULL)
		return;
	if (validate_text(call, body, "code", 1, 1, COMMERCE_MAX_COUPON_CODE, &code) != FIELD_ANSWERED &&
		validate_text(call, body, "discountType", 1, 1, 16, &type) != FIELD_ANSWERED &&
		validate_integer(call, body, "discountValue", 1, 1, INT64_MAX, &value) != FIELD_ANSWERED &&
		validate_integer(call, body, "totalQuantity", 1, 0, INT32_MAX, &quantity) != FIELD_ANSWERED &&
		validate_timestamp(call, body, "validFrom", &valid_from) != FIELD_ANSWERED &&
		validate_timestamp(call, body, "validUntil", &valid_until) != FIELD_ANSWERED &&
		(has_min = validate_integer(call, body, "minOrderAmount", 0, 0, INT64_MAX, &min_order)) != FIELD_ANSWERED &&
		(has_max = validate_integer(call, body, "maxDiscount", 0, 1, INT64_MAX, &max_discount)) != FIELD_ANSWERED &&
		validate_text(call, body, "name", 0, 1, COMMERCE_MAX_NAME, &name) != FIELD_ANSWERED)
		operator_write(call, "create_coupon",
					   json_pack("{s:s,s:s,s:I,s:I,s:s?,s:s?,s:o,s:o,s:s?}", "code", code, "discount_type", type,
								 "discount_value", (json_int_t) value, "total_quantity", (json_int_t) quantity,
								 "valid_from", valid_from, "valid_until", valid_until,
								 "min_order_amount", optional_integer(has_min, min_order),
								 "max_discount", optional_integer(has_max, max_discount), "name", name));
	json_decref(body);
}

void
handle_healthz(call_t *call, h2o_iovec_t id)
{
	(void) id;
	call_reply_json(call, 200, json_pack("{s:s}", "status", "ok"));
}

static void
on_ping_rows(call_t *call, PGresult *res)
{
	(void) res;
	call_reply_json(call, 200, json_pack("{s:s}", "status", "ready"));
}

void
handle_readyz(call_t *call, h2o_iovec_t id)
{
	(void) id;
	call->on_rows = on_ping_rows;
	call_query(call, DB_STMT_PING, 0, NULL);
}

void
handle_metrics(call_t *call, h2o_iovec_t id)
{
	size_t len;
	char *text = metrics_render(&len);

	(void) id;
	call_reply_text(call, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}
