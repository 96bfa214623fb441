/*
 * pg_commerce.h
 *      Declarations shared by the extension's C files.
 *
 * Vocabulary (see also docs/design.md): a "bucket" is one row holding
 * part of a countable quantity (a product's stock or a coupon's remaining
 * quantity); a "kept plan" is an SPI plan prepared once per backend and
 * reused for every call.
 */
#ifndef PG_COMMERCE_H
#define PG_COMMERCE_H

#include "postgres.h"

#include "executor/spi.h"

#include "commerce_errors.h"

/* The SQLSTATE (as an errcode() argument) of one of our conditions. */
extern int	pg_commerce_errcode(CommerceError error);

/*
 * ereport(ERROR) of one of our conditions: commerce_error(COMMERCE_OUT_OF_STOCK,
														   * errmsg(...),
														   errdetail(...)).  The SQLSTATE comes from the error table.
 */
#define commerce_error(kind, ...) \
	ereport(ERROR, (errcode(pg_commerce_errcode(kind)), __VA_ARGS__))

/* NOT_FOUND for an unknown id: "<what> not found", "No <what> has id <id>." */
extern void pg_commerce_not_found(const char *what, int64 id) pg_attribute_noreturn();

extern void pg_commerce_check_id(const char *name, int64 id);
extern void pg_commerce_require_read_committed(const char *function);

/*
 * Fixed namespaces (first int4 of the two-int4 advisory lock key) of the
 * transaction-scoped advisory locks the extension takes; the second int4 is
 * a hash of the locked identity.  A hash collision only makes two unrelated
 * callers wait for each other; the unique keys stay the real guard.
 */
#define PG_COMMERCE_LOCK_COUPON_USER	0x50430001	/* issue_coupon: coupon + user */
#define PG_COMMERCE_LOCK_IDEMPOTENCY	0x50430002	/* place_order, keyed_call: user + key */

extern void pg_commerce_advisory_xact_lock(int32 space, const void *key, Size keylen);
extern void pg_commerce_lock_user_key(int64 user_id, text *key);

/* GUCs */
extern int	pg_commerce_stock_buckets;
extern int	pg_commerce_coupon_buckets;

/*
 * An SPI plan prepared on first use and kept for the life of the backend.
 * Declare one static KeptPlan per statement, next to the code that runs it.
 */
typedef struct KeptPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[12];
	SPIPlanPtr	plan;
} KeptPlan;

#define KEPT_PLAN(query, n, ...) \
	{.sql = (query), .nargs = (n), .argtypes = {__VA_ARGS__}, .plan = NULL}

/* Runs a kept plan (read-write, fresh snapshot); returns SPI_processed. */
extern uint64 pg_commerce_execute(KeptPlan *kp, Datum *values, const char *nulls,
								  long count);

/* Column `col` (1-based) of row `row` of the last result; NULL is an error. */
extern Datum pg_commerce_result(uint64 row, int col);
extern bool pg_commerce_result_isnull(uint64 row, int col);

/*
 * Bucketed quantities (buckets.c).  A BucketSet names the table; taking
 * returns the first bucket taken from, or -1 when there is not enough.
 */
typedef struct BucketSet BucketSet;
extern BucketSet pg_commerce_stock_buckets_set;
extern BucketSet pg_commerce_coupon_buckets_set;

typedef enum BucketTakeResult
{
	BUCKET_TAKEN,
	BUCKET_NOT_ENOUGH,
	BUCKET_NO_SUCH_ID
} BucketTakeResult;

extern BucketTakeResult pg_commerce_bucket_take(BucketSet *set, int64 id, int32 quantity,
												int32 *first_bucket);
extern int64 pg_commerce_bucket_total(BucketSet *set, int64 id);

/*
 * Reading rows by key straight from an index (key_lookup.c), for the reads
 * of the hot paths that lock nothing.  Every lookup of one snapshot sees the
 * database at one instant.
 */
typedef enum LookupTable
{
	LOOKUP_USER,				/* users by id */
	LOOKUP_PRODUCT,				/* products by id */
	LOOKUP_STOCK_BUCKETS,		/* stock_buckets by product_id */
	LOOKUP_COUPON,				/* coupons by id */
	LOOKUP_COUPON_BUCKETS,		/* coupon_buckets by coupon_id */
	LOOKUP_ISSUED_COUPON		/* issued_coupons by (coupon_id, user_id) */
} LookupTable;

typedef struct KeyLookup
{
	LookupTable which;
	Relation	heap;
	Relation	index;
	struct IndexScanDescData *scan;
	TupleTableSlot *slot;
} KeyLookup;

extern Snapshot pg_commerce_snapshot_begin(void);
extern void pg_commerce_snapshot_end(Snapshot snapshot);
extern void pg_commerce_lookup_begin(KeyLookup *lookup, LookupTable which,
									 Snapshot snapshot, const int64 *keys);
extern bool pg_commerce_lookup_next(KeyLookup *lookup);
extern Datum pg_commerce_lookup_value(KeyLookup *lookup, const char *column, bool *isnull);
extern void pg_commerce_lookup_end(KeyLookup *lookup);
extern bool pg_commerce_row_exists(LookupTable which, Snapshot snapshot, const int64 *keys);
extern bool pg_commerce_buckets_hold(LookupTable which, Snapshot snapshot, int64 id,
									int64 needed, bool *empty);
extern Oid	pg_commerce_lookup_relid(LookupTable which);

/*
 * Sold-out hints (sold_out_hint.c): a shared note that a product's stock or
 * a coupon's quantity was seen sold out, so refusing it reads no bucket.
 * Look (which fills a ticket) before taking the snapshot whose reading may
 * set the hint; set only from a committed sum of 0 (with at least one bucket)
 * read by that snapshot.
 */
typedef struct SoldOutTicket
{
	int			slot;			/* -1: hints are off */
	bool		settable;
	uint64		generation;
	Oid			key_relid;
	int64		id;
} SoldOutTicket;

extern int	pg_commerce_sold_out_hint_slots;
extern void pg_commerce_sold_out_hint_init(void);
extern bool pg_commerce_sold_out_look(LookupTable buckets, int64 id, SoldOutTicket *ticket);
extern void pg_commerce_sold_out_set(const SoldOutTicket *ticket);

#endif							/* PG_COMMERCE_H */
