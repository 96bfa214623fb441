/*
 * order.c
 *      commerce.place_order: validate, take stock, use the coupon, debit the
 *      wallet and write the order with everything that belongs to it, all in
 *      the caller's transaction.
 *
 * Locks, in the global order of docs/design.md ("Lock order"):
 *   1. advisory lock (user, idempotency key), when a key is given, so that
 *      two requests with one key run one after the other and the second
 *      finds the first's order;
 *   3. the user row, by the UPDATE that debits the wallet only if the
 *      balance covers the order;
 *   5. stock buckets, per product in ascending product id (buckets.c);
 *   4. the issued coupon row, and 6. the sales statistics slot of each
 *      product's first bucket (ascending product id), in the final statement.
 * The issued coupon comes after the buckets here, yet no cycle can form:
 * every writer of an issued coupon (place_order, cancel_order) first locks
 * its owner's user row, so two of them never hold it and wait at once.
 * Every caller takes these in the same order, so two orders (or an order and
 * a cancel) cannot deadlock.  Any error aborts the whole transaction, so a
 * failed order leaves nothing behind: no half-written order.
 *
 * What is only read (prices, committed stock, the user, the coupon) is read
 * first, from one snapshot, by index probes (key_lookup.c), so that an order
 * that cannot succeed is refused before any lock and an order that can costs
 * no statement for it.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "order_items.h"

static KeptPlan find_replay = KEPT_PLAN(
	"SELECT id, total_amount, discount_amount, paid_amount, request_fingerprint"
	" FROM commerce.orders WHERE user_id = $1 AND idempotency_key = $2",
	2, INT8OID, TEXTOID);

/* The slow path of the debit: wait for the user row (debit_wallet_locked). */
static KeptPlan lock_user = KEPT_PLAN(
	"SELECT balance FROM commerce.users WHERE id = $1 FOR UPDATE",
	1, INT8OID);

/*
 * The wallet debit, which also locks the user row: it takes effect only if
 * the balance covers the order (paid may be 0: the lock is still needed).
 */
static KeptPlan debit_wallet = KEPT_PLAN(
	"UPDATE commerce.users SET balance = balance - $2"
	" WHERE id = $1 AND balance >= $2 RETURNING balance",
	2, INT8OID, INT8OID);

/*
 * Everything the order writes, in one statement: $1 user, $2 total,
 * $3 discount, $4 paid, $5 issued coupon, $6 idempotency key,
 * $7 fingerprint, $8..$11 the lines (product, quantity, unit price, bucket),
 * $12 the balance after the debit.  Returns the order id and whether the
 * coupon was still unused (another order of the same user may have used it
 * after it was read; the user row lock orders the two).
 */
static KeptPlan write_order = KEPT_PLAN(
	"WITH o AS ("
	"  INSERT INTO commerce.orders (user_id, status, total_amount, discount_amount, paid_amount,"
	"    issued_coupon_id, idempotency_key, request_fingerprint)"
	"  VALUES ($1, 'paid', $2, $3, $4, $5, $6, $7)"
	"  RETURNING id, created_at),"
	" lines AS ("
	"  SELECT * FROM ROWS FROM (pg_catalog.unnest($8), pg_catalog.unnest($9), pg_catalog.unnest($10),"
	"    pg_catalog.unnest($11)) AS l(product_id, quantity, unit_price, bucket)),"
	" items AS ("
	"  INSERT INTO commerce.order_items (order_id, product_id, quantity, unit_price, stock_bucket)"
	"  SELECT o.id, l.product_id, l.quantity, l.unit_price, l.bucket FROM o, lines l),"
	" payment AS ("
	"  INSERT INTO commerce.payments (order_id, amount, status) SELECT o.id, $4, 'paid' FROM o),"
	" ledger AS ("
	"  INSERT INTO commerce.wallet_ledger (user_id, amount, balance_after, reason, order_id)"
	"  SELECT $1, -$4, $12, 'order_payment', o.id FROM o WHERE $4 > 0),"
	" coupon AS ("
	"  UPDATE commerce.issued_coupons ic SET status = 'used', order_id = o.id, used_at = o.created_at"
	"  FROM o WHERE ic.id = $5 AND ic.status = 'issued' RETURNING ic.id),"
	" stats AS ("
	"  INSERT INTO commerce.sales_stats AS s (hour, product_id, slot, quantity)"
	"  SELECT pg_catalog.date_trunc('hour', o.created_at), l.product_id, l.bucket, l.quantity"
	"  FROM o, lines l ORDER BY l.product_id"
	"  ON CONFLICT (hour, product_id, slot) DO UPDATE SET quantity = s.quantity + excluded.quantity),"
	" event AS ("
	"  INSERT INTO commerce.outbox (event_type, aggregate_id, payload)"
	"  SELECT 'order_placed', o.id, pg_catalog.jsonb_build_object("
	"    'order_id', o.id, 'user_id', $1, 'total_amount', $2, 'discount_amount', $3,"
	"    'paid_amount', $4, 'issued_coupon_id', $5,"
	"    'items', (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
	"        'product_id', l.product_id, 'quantity', l.quantity, 'unit_price', l.unit_price)"
	"        ORDER BY l.product_id) FROM lines l))"
	"  FROM o)"
	" SELECT o.id, $5 IS NULL OR EXISTS (SELECT FROM coupon) FROM o",
	12, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID,
	INT8ARRAYOID, INT4ARRAYOID, INT8ARRAYOID, INT4ARRAYOID, INT8OID);

typedef struct OrderAmounts
{
	int64		total;
	int64		discount;
	int64		paid;
} OrderAmounts;

static void
out_of_stock_error(const OrderLine *line)
{
	commerce_error(COMMERCE_OUT_OF_STOCK,
				   errmsg("out of stock"),
				   errdetail_plural("Product " INT64_FORMAT " has less than the %d unit asked for.",
									"Product " INT64_FORMAT " has less than the %d units asked for.",
									line->quantity, line->product_id, line->quantity));
}

static void
coupon_not_usable(int64 user_id, int64 coupon_id, const char *why)
{
	commerce_error(COMMERCE_COUPON_NOT_USABLE,
				   errmsg("coupon not usable"),
				   errdetail("Coupon " INT64_FORMAT " of user " INT64_FORMAT " %s.", coupon_id, user_id, why));
}

/* One array of the order's lines, in line order; elems filled by the caller. */
static Datum
int8_array(Datum *elems, int count)
{
	return PointerGetDatum(construct_array(elems, count, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
int4_array(Datum *elems, int count)
{
	return PointerGetDatum(construct_array(elems, count, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}

/* The order's product ids as bigint[]. */
static Datum
product_ids_array(const OrderItems *items)
{
	Datum	   *elems = palloc(sizeof(Datum) * items->count);

	for (int i = 0; i < items->count; i++)
		elems[i] = Int64GetDatum(items->lines[i].product_id);
	return int8_array(elems, items->count);
}

/* The order's unit prices as bigint[]. */
static Datum
unit_prices_array(const OrderItems *items)
{
	Datum	   *elems = palloc(sizeof(Datum) * items->count);

	for (int i = 0; i < items->count; i++)
		elems[i] = Int64GetDatum(items->lines[i].unit_price);
	return int8_array(elems, items->count);
}

/* The order's quantities as integer[]. */
static Datum
quantities_array(const OrderItems *items)
{
	Datum	   *elems = palloc(sizeof(Datum) * items->count);

	for (int i = 0; i < items->count; i++)
		elems[i] = Int32GetDatum(items->lines[i].quantity);
	return int4_array(elems, items->count);
}

/* The stock bucket each line took from, as integer[]. */
static Datum
buckets_array(const OrderItems *items)
{
	Datum	   *elems = palloc(sizeof(Datum) * items->count);

	for (int i = 0; i < items->count; i++)
		elems[i] = Int32GetDatum(items->lines[i].bucket);
	return int4_array(elems, items->count);
}

static void
insufficient_balance_error(int64 user_id, int64 paid, int64 balance)
{
	commerce_error(COMMERCE_INSUFFICIENT_BALANCE,
				   errmsg("insufficient balance"),
				   errdetail("The order costs " INT64_FORMAT " but user " INT64_FORMAT " has " INT64_FORMAT ".",
							 paid, user_id, balance),
				   errhint("Charge the wallet first."));
}

/*
 * The user's issued copy of coupon_id under the snapshot: whether the user
 * holds one, its id and whether it is used.
 */
static bool
read_issued_copy(Snapshot snapshot, int64 user_id, int64 coupon_id, int64 *issued_id, bool *used)
{
	int64		pair[2] = {coupon_id, user_id};
	KeyLookup	lookup;
	bool		held;
	bool		isnull;

	pg_commerce_lookup_begin(&lookup, LOOKUP_ISSUED_COUPON, snapshot, pair);
	held = pg_commerce_lookup_next(&lookup);
	if (held)
	{
		*issued_id = DatumGetInt64(pg_commerce_lookup_value(&lookup, "id", &isnull));
		*used = strcmp(TextDatumGetCString(pg_commerce_lookup_value(&lookup, "status", &isnull)),
					   "issued") != 0;
	}
	pg_commerce_lookup_end(&lookup);
	return held;
}

/*
 * Whether the user's copy of the coupon is used, as committed now.  Called
 * under the user row lock, which every writer of the copy takes first, so
 * the answer holds until this transaction ends.
 */
static bool
coupon_used_now(int64 user_id, int64 coupon_id)
{
	Snapshot	snapshot = pg_commerce_snapshot_begin();
	int64		issued_id;
	bool		used = true;

	(void) read_issued_copy(snapshot, user_id, coupon_id, &issued_id, &used);
	pg_commerce_snapshot_end(snapshot);
	return used;
}

/*
 * Debits the wallet, which locks the user row (lock order step 3), and
 * returns the balance after.  The fast path is one UPDATE that takes effect
 * only if the balance covers the order.  When it does not, its snapshot may
 * predate a refund or charge that was committing meanwhile (PostgreSQL only
 * waits for a row that passes the WHERE clause in the snapshot), so the
 * refusal is decided only after waiting for the row lock.  A coupon seen
 * used is re-checked under that lock too, first, as before the balance.
 */
static int64
debit_wallet_locked(int64 user_id, int64 paid, bool has_coupon, int64 coupon_id,
					bool coupon_seen_used)
{
	Datum		values[2] = {Int64GetDatum(user_id), Int64GetDatum(paid)};
	int64		balance;

	if (!coupon_seen_used && pg_commerce_execute(&debit_wallet, values, NULL, 1) == 1)
		return DatumGetInt64(pg_commerce_result(0, 1));

	if (pg_commerce_execute(&lock_user, values, NULL, 1) == 0)
		pg_commerce_not_found("user", user_id);
	balance = DatumGetInt64(pg_commerce_result(0, 1));
	if (has_coupon && coupon_seen_used && coupon_used_now(user_id, coupon_id))
		coupon_not_usable(user_id, coupon_id, "is already used");
	if (balance < paid)
		insufficient_balance_error(user_id, paid, balance);
	if (pg_commerce_execute(&debit_wallet, values, NULL, 1) != 1)
		elog(ERROR, "the locked user row " INT64_FORMAT " did not take the debit", user_id);
	return DatumGetInt64(pg_commerce_result(0, 1));
}

/*
 * Unit prices from the products; every product must exist.  Returns the
 * total.  A line asking for more than the committed stock is refused here,
 * before any lock: uncommitted orders can only lower that stock, so this is
 * never a false "out of stock", and the rest of a sold-out sale costs a few
 * index probes each (none once its stock is hinted sold out: the hints were
 * looked before the snapshot, see place_order).
 */
static int64
price_lines(OrderItems *items, Snapshot snapshot)
{
	int64		total = 0;

	for (int i = 0; i < items->count; i++)
	{
		OrderLine  *line = &items->lines[i];
		KeyLookup	product;
		bool		found;
		bool		isnull;
		bool		empty;
		int64		amount;

		/*
		 * A hinted product exists: its buckets do (deleting them clears the
		 * hint) and they reference it.  So its refusal needs no probe, and
		 * comes after the probes of the lines before it, as it would with one.
		 */
		if (line->hinted_sold_out)
			out_of_stock_error(line);
		pg_commerce_lookup_begin(&product, LOOKUP_PRODUCT, snapshot, &line->product_id);
		found = pg_commerce_lookup_next(&product);
		if (found)
			line->unit_price = DatumGetInt64(pg_commerce_lookup_value(&product, "price", &isnull));
		pg_commerce_lookup_end(&product);
		if (!found)
			pg_commerce_not_found("product", line->product_id);
		if (!pg_commerce_buckets_hold(LOOKUP_STOCK_BUCKETS, snapshot, line->product_id,
									  line->quantity, &empty))
		{
			if (empty)
				pg_commerce_sold_out_set(&line->ticket);
			out_of_stock_error(line);
		}
		if (pg_mul_s64_overflow(line->unit_price, line->quantity, &amount) ||
			pg_add_s64_overflow(total, amount, &total))
			/* no wallet can hold it: every balance is at most pg_commerce.max_balance */
			commerce_error(COMMERCE_INSUFFICIENT_BALANCE,
						   errmsg("insufficient balance"),
						   errdetail("The order costs more than " INT64_FORMAT ", more than any wallet can hold.",
									 PG_INT64_MAX));
	}
	return total;
}

/*
 * The discount the user's issued copy of coupon_id gives on `total`, or
 * raises why it cannot be used.  Sets *issued_id, and *used when the copy was
 * used at the snapshot: a cancel may be giving it back right now, so that is
 * decided only under the user row lock (coupon_used_now).  Read without a
 * lock: the final statement uses the coupon only if it is still unused.
 */
static int64
coupon_discount(Snapshot snapshot, int64 user_id, int64 coupon_id, int64 total,
				int64 *issued_id, bool *used)
{
	KeyLookup	lookup;
	bool		held;
	bool		isnull;
	char	   *type;
	int64		value;
	int64		min_order;
	bool		no_cap;
	int64		cap;
	bool		no_expiry;
	TimestampTz valid_until;
	int64		discount;

	held = read_issued_copy(snapshot, user_id, coupon_id, issued_id, used);

	pg_commerce_lookup_begin(&lookup, LOOKUP_COUPON, snapshot, &coupon_id);
	if (!pg_commerce_lookup_next(&lookup))
		pg_commerce_not_found("coupon", coupon_id);
	type = TextDatumGetCString(pg_commerce_lookup_value(&lookup, "discount_type", &isnull));
	value = DatumGetInt64(pg_commerce_lookup_value(&lookup, "discount_value", &isnull));
	cap = DatumGetInt64(pg_commerce_lookup_value(&lookup, "max_discount", &no_cap));
	min_order = DatumGetInt64(pg_commerce_lookup_value(&lookup, "min_order_amount", &isnull));
	valid_until = DatumGetTimestampTz(pg_commerce_lookup_value(&lookup, "valid_until", &no_expiry));
	pg_commerce_lookup_end(&lookup);

	if (!held)
		commerce_error(COMMERCE_COUPON_NOT_USABLE,
					   errmsg("coupon not usable"),
					   errdetail("User " INT64_FORMAT " does not hold coupon " INT64_FORMAT ".", user_id, coupon_id),
					   errhint("Issue the coupon to the user first."));
	if (!no_expiry && GetCurrentTransactionStartTimestamp() >= valid_until)
		commerce_error(COMMERCE_COUPON_NOT_USABLE,
					   errmsg("coupon not usable"),
					   errdetail("Coupon " INT64_FORMAT " expired at %s.", coupon_id, timestamptz_to_str(valid_until)));
	if (total < min_order)
		commerce_error(COMMERCE_COUPON_NOT_USABLE,
					   errmsg("coupon not usable"),
					   errdetail("Coupon " INT64_FORMAT " needs an order of at least " INT64_FORMAT
								 "; this order totals " INT64_FORMAT ".", coupon_id, min_order, total));

	if (strcmp(type, "fixed") == 0)
		discount = value;
	else
	{
		/* floor(total * value / 100) without overflow (value <= 100) */
		discount = (total / 100) * value + (total % 100) * value / 100;
		if (!no_cap)
			discount = Min(discount, cap);
	}
	return Min(discount, total);
}

static void
return_row(FunctionCallInfo fcinfo, int64 order_id, const OrderAmounts *amounts)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	values[0] = Int64GetDatum(order_id);
	values[1] = CStringGetTextDatum("paid");
	values[2] = Int64GetDatum(amounts->total);
	values[3] = Int64GetDatum(amounts->discount);
	values[4] = Int64GetDatum(amounts->paid);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * A replay of an idempotent request: the first result, or an error if the
 * key was used for another request.  Returns false when the key is new.
 */
static bool
replay(FunctionCallInfo fcinfo, int64 user_id, text *key, const char *fingerprint)
{
	Datum		values[2] = {Int64GetDatum(user_id), PointerGetDatum(key)};
	OrderAmounts amounts;

	if (pg_commerce_execute(&find_replay, values, NULL, 1) == 0)
		return false;
	if (strcmp(TextDatumGetCString(pg_commerce_result(0, 5)), fingerprint) != 0)
		commerce_error(COMMERCE_IDEMPOTENCY_MISMATCH,
					   errmsg("idempotency key reused with another request"),
					   errdetail("Order " INT64_FORMAT " was placed with this key for a different request.",
								 DatumGetInt64(pg_commerce_result(0, 1))),
					   errhint("Use a new idempotency key for a new request."));
	amounts.total = DatumGetInt64(pg_commerce_result(0, 2));
	amounts.discount = DatumGetInt64(pg_commerce_result(0, 3));
	amounts.paid = DatumGetInt64(pg_commerce_result(0, 4));
	return_row(fcinfo, DatumGetInt64(pg_commerce_result(0, 1)), &amounts);
	return true;
}

/*
 * What an order that may succeed needs before its first statement: the
 * result set, the request's fingerprint (returned) and SPI.
 */
static char *
begin_order(FunctionCallInfo fcinfo, const OrderItems *items, bool has_coupon, int64 coupon_id)
{
	char	   *fingerprint;

	InitMaterializedSRF(fcinfo, 0);
	fingerprint = pg_commerce_order_fingerprint(items, has_coupon, coupon_id);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	return fingerprint;
}

/*
 * commerce.place_order(user_id bigint, items jsonb, coupon_id bigint DEFAULT NULL,
 *                      idempotency_key text DEFAULT NULL)
 *   RETURNS TABLE (order_id bigint, status text, total_amount bigint,
 *                  discount_amount bigint, paid_amount bigint)
 *
 * Locks: see the file header.
 */
PG_FUNCTION_INFO_V1(pg_commerce_place_order);
Datum
pg_commerce_place_order(PG_FUNCTION_ARGS)
{
	int64		user_id;
	OrderItems *items;
	bool		has_coupon = !PG_ARGISNULL(2);
	int64		coupon_id = has_coupon ? PG_GETARG_INT64(2) : 0;
	text	   *key = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	char	   *fingerprint;
	OrderAmounts amounts;
	int64		balance_after;
	int64		issued_id = 0;
	bool		coupon_seen_used = false;
	Snapshot	snapshot;
	Datum		values[12];
	char		nulls[12];

	pg_commerce_require_read_committed("place_order");

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		commerce_error(COMMERCE_INVALID_ARGUMENT, errmsg("user_id and items must not be null"));
	user_id = PG_GETARG_INT64(0);
	pg_commerce_check_id("user_id", user_id);
	if (has_coupon)
		pg_commerce_check_id("coupon_id", coupon_id);
	if (key != NULL) {
		int			chars = pg_mbstrlen_with_len(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));

		if (chars < 1 || chars > COMMERCE_MAX_IDEMPOTENCY_KEY)
			commerce_error(COMMERCE_INVALID_ARGUMENT,
						   errmsg("idempotency_key must be 1 to %d characters", COMMERCE_MAX_IDEMPOTENCY_KEY));
	}
	items = pg_commerce_parse_items(PG_GETARG_JSONB_P(1));

	/* the sold-out hints, before any snapshot that may set one (price_lines) */
	for (int i = 0; i < items->count; i++)
		items->lines[i].hinted_sold_out =
			pg_commerce_sold_out_look(LOOKUP_STOCK_BUCKETS, items->lines[i].product_id,
									  &items->lines[i].ticket);

	/*
	 * A keyed request is first compared with the one that used its key, so
	 * that a replay gets its order back even when the product has sold out
	 * since.  Without a key, a request that cannot succeed is refused below
	 * before the result set, the fingerprint and SPI are set up: that is most
	 * calls of a sale.
	 */
	if (key != NULL)
	{
		fingerprint = begin_order(fcinfo, items, has_coupon, coupon_id);
		pg_commerce_lock_user_key(user_id, key);
		if (replay(fcinfo, user_id, key, fingerprint))
		{
			SPI_finish();
			return (Datum) 0;
		}
	}

	snapshot = pg_commerce_snapshot_begin();	/* after the tickets */
	amounts.total = price_lines(items, snapshot);
	if (!pg_commerce_row_exists(LOOKUP_USER, snapshot, &user_id))
		pg_commerce_not_found("user", user_id);
	amounts.discount = has_coupon ?
		coupon_discount(snapshot, user_id, coupon_id, amounts.total, &issued_id, &coupon_seen_used) : 0;
	pg_commerce_snapshot_end(snapshot);
	amounts.paid = amounts.total - amounts.discount;

	if (key == NULL)
		fingerprint = begin_order(fcinfo, items, has_coupon, coupon_id);

	balance_after = debit_wallet_locked(user_id, amounts.paid, has_coupon, coupon_id,
										coupon_seen_used);

	for (int i = 0; i < items->count; i++)
	{
		OrderLine  *line = &items->lines[i];

		if (pg_commerce_bucket_take(&pg_commerce_stock_buckets_set, line->product_id,
									line->quantity, &line->bucket) != BUCKET_TAKEN)
			out_of_stock_error(line);
	}

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(user_id);
	values[1] = Int64GetDatum(amounts.total);
	values[2] = Int64GetDatum(amounts.discount);
	values[3] = Int64GetDatum(amounts.paid);
	values[4] = Int64GetDatum(issued_id);
	nulls[4] = has_coupon ? ' ' : 'n';
	values[5] = PointerGetDatum(key);
	nulls[5] = key ? ' ' : 'n';
	values[6] = CStringGetTextDatum(fingerprint);
	values[7] = product_ids_array(items);
	values[8] = quantities_array(items);
	values[9] = unit_prices_array(items);
	values[10] = buckets_array(items);
	values[11] = Int64GetDatum(balance_after);
	if (pg_commerce_execute(&write_order, values, nulls, 1) != 1)
		elog(ERROR, "order insert returned no row");
	if (!DatumGetBool(pg_commerce_result(0, 2)))
		coupon_not_usable(user_id, coupon_id, "was used by another order meanwhile");

	return_row(fcinfo, DatumGetInt64(pg_commerce_result(0, 1)), &amounts);
	SPI_finish();
	return (Datum) 0;
}
