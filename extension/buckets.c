/*
 * buckets.c
 *      Taking units from a quantity split over bucket rows, for stock
 *      (commerce.stock_buckets) and coupon quantities (commerce.coupon_buckets).
 *
 * A quantity that many transactions decrement at once is kept in several
 * rows ("buckets"); its value is their sum.  Taking q units:
 *
 *   1. free bucket: the first bucket holding >= q units that nobody has
 *      locked (FOR UPDATE SKIP LOCKED), decremented in the same statement,
 *      in a subtransaction (see take_in_subtransaction for why).  Concurrent
 *      takers spread over the buckets instead of queueing.
 *   2. committed total: if that found nothing, read the sum of all buckets
 *      as last committed.  Uncommitted takers can only lower it and an
 *      uncommitted restock has not happened yet, so a total < q is a true
 *      "not enough" at that instant: rejecting costs no lock wait at all,
 *      which keeps a sold-out item cheap to refuse.
 *   3. wait for one: if some single bucket held >= q, wait for one such
 *      bucket (chosen from the same snapshot as the total; the choice is
 *      spread over the buckets by backend) with a single-row
 *      UPDATE ... AND quantity >= q.  When its holder commits the row is
 *      re-checked with its new quantity; when it aborts, the units are ours.
 *      The wait runs in an internal subtransaction (as step 1 does): PostgreSQL
 *      keeps the row lock even when the re-check fails, and rolling the
 *      subtransaction back releases it, so a waiter never holds a bucket of
 *      this id while it waits for another.  A failed wait goes back to step 1.  This is what
 *      makes SKIP LOCKED never say a false "sold out": the rows it skipped
 *      are waited for before saying no.
 *   4. gather: when no single bucket can serve q (or the waits keep losing),
 *      lock every bucket of the id in ascending order, and take q from them
 *      if their sum allows, else "not enough".
 *
 * Locks (lock order step 5 of docs/design.md): step 1 takes one bucket
 * without waiting; step 3 waits for one bucket while holding no other bucket
 * of this id; step 4 waits for buckets in ascending order.  A waiter in step
 * 3 holds nothing of this id, and step 4 waiters go in one order, so the
 * buckets of one id cannot deadlock; across ids callers go in ascending id.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/resowner.h"

#include "pg_commerce.h"

/*
 * Lost waits (the bucket was emptied meanwhile) before step 4 takes over;
 * each one means another transaction took units, so this bounds the retries
 * without ever giving up on stock that is there.
 */
#define PG_COMMERCE_MAX_BUCKET_WAITS	16

struct BucketSet
{
	LookupTable lookup;			/* the table, for its sold-out hints */
	KeptPlan	take_free;
	KeptPlan	total;
	KeptPlan	take_waiting;
	KeptPlan	lock_all;
	KeptPlan	take_exact;
};

/*
 * The statements, written once for both tables.  Arguments: $1 id,
 * $2 quantity, $3 bucket to take from, or for `total` a key whose XOR with
 * the bucket numbers orders them differently for each backend (so waiters
 * spread over the buckets).
 */
#define BUCKET_SET(lookup_table, table, key) \
{ \
	.lookup = (lookup_table), \
	.take_free = KEPT_PLAN( \
		"UPDATE " table " b SET quantity = b.quantity - $2" \
		" WHERE b." key " = $1 AND b.bucket = (" \
		"  SELECT f.bucket FROM " table " f" \
		"  WHERE f." key " = $1 AND f.quantity >= $2" \
		"  ORDER BY f.bucket LIMIT 1 FOR UPDATE SKIP LOCKED)" \
		" RETURNING b.bucket", \
		2, INT8OID, INT4OID), \
	.total = KEPT_PLAN( \
		"SELECT pg_catalog.count(*)::integer, COALESCE(pg_catalog.sum(quantity), 0)::bigint," \
		" (pg_catalog.array_agg(bucket ORDER BY bucket # $3) FILTER (WHERE quantity >= $2))[1]" \
		" FROM " table " WHERE " key " = $1", \
		3, INT8OID, INT4OID, INT4OID), \
	.take_waiting = KEPT_PLAN( \
		"UPDATE " table " SET quantity = quantity - $2" \
		" WHERE " key " = $1 AND bucket = $3 AND quantity >= $2" \
		" RETURNING bucket", \
		3, INT8OID, INT4OID, INT4OID), \
	.lock_all = KEPT_PLAN( \
		"SELECT bucket, quantity FROM " table \
		" WHERE " key " = $1 ORDER BY bucket FOR UPDATE", \
		1, INT8OID), \
	.take_exact = KEPT_PLAN( \
		"UPDATE " table " SET quantity = quantity - $2" \
		" WHERE " key " = $1 AND bucket = $3", \
		3, INT8OID, INT4OID, INT4OID), \
}

BucketSet	pg_commerce_stock_buckets_set =
	BUCKET_SET(LOOKUP_STOCK_BUCKETS, "commerce.stock_buckets", "product_id");
BucketSet	pg_commerce_coupon_buckets_set =
	BUCKET_SET(LOOKUP_COUPON_BUCKETS, "commerce.coupon_buckets", "coupon_id");

/*
 * Runs one taking statement (step 1 or 3) in an internal subtransaction and
 * returns whether it took from a bucket (and which).
 *
 * Why a subtransaction: when FOR UPDATE or UPDATE finds that a row it waited
 * for (or found just changed) no longer passes its WHERE clause, PostgreSQL
 * skips the row but keeps its lock until the transaction ends.  A caller
 * that then waits for another bucket of the same id would wait while holding
 * one, and two such callers (or one and a restock) deadlock.  Rolling back
 * the subtransaction of a statement that took nothing releases those locks.
 * When it took something it is released instead and its locks pass to the
 * transaction; an emptied bucket it may still hold then only delays other
 * callers until commit, it cannot close a cycle (this caller waits for
 * nothing of this id any more).
 *
 * On an error the subtransaction is rolled back before the error goes on, so
 * a caller that catches it (a PL/pgSQL EXCEPTION block) finds the
 * transaction nesting it expects.
 */
static bool
take_in_subtransaction(KeptPlan *plan, Datum *values, int32 *bucket)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		taken = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		taken = pg_commerce_execute(plan, values, NULL, 0) == 1;
		if (taken)
			*bucket = DatumGetInt32(pg_commerce_result(0, 1));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ReThrowError(edata);
	}
	PG_END_TRY();

	if (taken)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return taken;
}

/* Step 1: the first free bucket holding enough, without waiting. */
static bool
take_free(BucketSet *set, int64 id, int32 quantity, int32 *bucket)
{
	Datum		values[2] = {Int64GetDatum(id), Int32GetDatum(quantity)};

	return take_in_subtransaction(&set->take_free, values, bucket);
}

/* Step 3: wait for `bucket` and take from it if it still holds enough. */
static bool
take_waiting(BucketSet *set, int64 id, int32 quantity, int32 bucket)
{
	Datum		values[3] = {Int64GetDatum(id), Int32GetDatum(quantity), Int32GetDatum(bucket)};
	int32		taken_from;

	return take_in_subtransaction(&set->take_waiting, values, &taken_from);
}

/* Step 4: all buckets locked in ascending order, then taken from greedily. */
static bool
take_gathered(BucketSet *set, int64 id, int32 quantity, int32 *first_bucket)
{
	Datum		key = Int64GetDatum(id);
	uint64		n = pg_commerce_execute(&set->lock_all, &key, NULL, 0);
	int64		sum = 0;
	int32	   *buckets;
	int32	   *have;
	int32		left = quantity;

	buckets = palloc(sizeof(int32) * (n + 1));
	have = palloc(sizeof(int32) * (n + 1));
	for (uint64 i = 0; i < n; i++)
	{
		buckets[i] = DatumGetInt32(pg_commerce_result(i, 1));
		have[i] = DatumGetInt32(pg_commerce_result(i, 2));
		sum += have[i];
	}
	if (sum < quantity)
		return false;

	*first_bucket = -1;
	for (uint64 i = 0; i < n && left > 0; i++)
	{
		int32		part = Min(have[i], left);
		Datum		values[3];

		if (part == 0)
			continue;
		values[0] = key;
		values[1] = Int32GetDatum(part);
		values[2] = Int32GetDatum(buckets[i]);
		if (pg_commerce_execute(&set->take_exact, values, NULL, 0) != 1)
			elog(ERROR, "locked bucket %d of " INT64_FORMAT " vanished", buckets[i], id);
		if (*first_bucket < 0)
			*first_bucket = buckets[i];
		left -= part;
	}
	Assert(left == 0);
	return true;
}

/*
 * Takes `quantity` (> 0) units of id's quantity; see the file header.
 * Must be called inside SPI_connect; at READ COMMITTED each statement takes
 * a fresh snapshot, which steps 2 and 3 rely on.  An id hinted sold out
 * (sold_out_hint.c) is refused before step 1; a committed total of 0 in
 * step 2 sets the hint.
 */
BucketTakeResult
pg_commerce_bucket_take(BucketSet *set, int64 id, int32 quantity, int32 *first_bucket)
{
	SoldOutTicket ticket;

	Assert(quantity > 0);
	if (pg_commerce_sold_out_look(set->lookup, id, &ticket))
		return BUCKET_NOT_ENOUGH;

	for (int attempt = 0; attempt < PG_COMMERCE_MAX_BUCKET_WAITS; attempt++)
	{
		Datum		values[3];
		int32		nbuckets;
		int64		total;
		int32		candidate;

		if (take_free(set, id, quantity, first_bucket))
			return BUCKET_TAKEN;

		values[0] = Int64GetDatum(id);
		values[1] = Int32GetDatum(quantity);
		values[2] = Int32GetDatum((MyProcPid + attempt) & 1023);
		if (pg_commerce_execute(&set->total, values, NULL, 1) != 1)
			elog(ERROR, "bucket total returned no row");
		nbuckets = DatumGetInt32(pg_commerce_result(0, 1));
		total = DatumGetInt64(pg_commerce_result(0, 2));
		if (nbuckets == 0)
			return BUCKET_NO_SUCH_ID;
		if (total == 0)
			pg_commerce_sold_out_set(&ticket);
		if (total < quantity)
			return BUCKET_NOT_ENOUGH;
		if (pg_commerce_result_isnull(0, 3))
			break;				/* no single bucket can serve: gather */
		candidate = DatumGetInt32(pg_commerce_result(0, 3));
		if (take_waiting(set, id, quantity, candidate))
		{
			*first_bucket = candidate;
			return BUCKET_TAKEN;
		}
	}

	return take_gathered(set, id, quantity, first_bucket) ? BUCKET_TAKEN : BUCKET_NOT_ENOUGH;
}

/* The sum of id's buckets as this statement sees it (its own changes included). */
int64
pg_commerce_bucket_total(BucketSet *set, int64 id)
{
	Datum		values[3] = {Int64GetDatum(id), Int32GetDatum(1), Int32GetDatum(0)};

	if (pg_commerce_execute(&set->total, values, NULL, 1) != 1)
		elog(ERROR, "bucket total returned no row");
	return DatumGetInt64(pg_commerce_result(0, 2));
}
