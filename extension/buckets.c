/*
 * buckets.c
 *      Taking units from a quantity split over bucket rows, for stock
 *      (commerce.stock_buckets) and coupon quantities (commerce.coupon_buckets).
 *
 * A quantity that many transactions decrement at once is kept in several
 * rows ("buckets"); its value is their sum.  Taking q units:
 *
 *   1. free bucket: the first bucket holding >= q units that nobody has
 *      locked (FOR UPDATE SKIP LOCKED), decremented in the same statement.
 *      Concurrent takers spread over the buckets instead of queueing.
 *   2. committed total: if that found nothing, read the sum of all buckets
 *      as last committed.  Uncommitted takers can only lower it and an
 *      uncommitted restock has not happened yet, so a total < q is a true
 *      "not enough" at that instant: rejecting costs no lock wait at all,
 *      which keeps a sold-out item cheap to refuse.
 *   3. wait for one: if some single bucket held >= q, wait for such a
 *      bucket (FOR UPDATE; the start of the scan differs per backend so the
 *      waiters spread over the locked buckets).  When its holder commits,
 *      the row is re-checked with its new quantity; when it aborts, the
 *      units are ours.  This is what makes SKIP LOCKED never say a false
 *      "sold out": the rows it skipped are waited for before saying no.
 *   4. gather: otherwise lock every bucket of the id in ascending order,
 *      and take q from them if their sum allows, else "not enough".
 *
 * Locks (lock order step 5 of sql/pg_commerce.sql): step 1 takes one bucket
 * without waiting; step 3 waits for one bucket while holding no other bucket
 * of this id; step 4 waits for buckets in ascending order.  A waiter in step
 * 3 or 4 never holds a bucket another waiter of this id needs first, so the
 * buckets of one id cannot deadlock; across ids callers go in ascending id.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"

#include "pg_commerce.h"

struct BucketSet
{
	KeptPlan	take_free;
	KeptPlan	total;
	KeptPlan	take_waiting;
	KeptPlan	lock_all;
	KeptPlan	take_exact;
};

/*
 * The statements, written once for both tables.  Arguments: $1 id,
 * $2 quantity, $3 bucket (start of the waiting scan, or the bucket to take
 * from).
 */
#define BUCKET_SET(table, key) \
{ \
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
		" COALESCE(pg_catalog.max(quantity), 0)" \
		" FROM " table " WHERE " key " = $1", \
		1, INT8OID), \
	.take_waiting = KEPT_PLAN( \
		"UPDATE " table " b SET quantity = b.quantity - $2" \
		" WHERE b." key " = $1 AND b.bucket = (" \
		"  SELECT w.bucket FROM " table " w" \
		"  WHERE w." key " = $1 AND w.quantity >= $2" \
		"  ORDER BY w.bucket >= $3 DESC, w.bucket LIMIT 1 FOR UPDATE)" \
		" RETURNING b.bucket", \
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

BucketSet	pg_commerce_stock_buckets_set = BUCKET_SET("commerce.stock_buckets", "product_id");
BucketSet	pg_commerce_coupon_buckets_set = BUCKET_SET("commerce.coupon_buckets", "coupon_id");

/* Steps 1 and 3: one statement that returns the bucket it took from. */
static bool
take_one(KeptPlan *plan, int64 id, int32 quantity, int32 start, int32 *bucket)
{
	Datum		values[3] = {Int64GetDatum(id), Int32GetDatum(quantity), Int32GetDatum(start)};

	if (pg_commerce_execute(plan, values, NULL, 0) == 0)
		return false;
	*bucket = DatumGetInt32(pg_commerce_result(0, 1));
	return true;
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
			elog(ERROR, "locked bucket %d of %lld vanished", buckets[i], (long long) id);
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
 * a fresh snapshot, which steps 2 and 3 rely on.
 */
BucketTakeResult
pg_commerce_bucket_take(BucketSet *set, int64 id, int32 quantity, int32 *first_bucket)
{
	Datum		key = Int64GetDatum(id);
	int32		nbuckets;
	int64		total;
	int32		largest;

	Assert(quantity > 0);

	if (take_one(&set->take_free, id, quantity, 0, first_bucket))
		return BUCKET_TAKEN;

	if (pg_commerce_execute(&set->total, &key, NULL, 1) != 1)
		elog(ERROR, "bucket total returned no row");
	nbuckets = DatumGetInt32(pg_commerce_result(0, 1));
	total = DatumGetInt64(pg_commerce_result(0, 2));
	largest = DatumGetInt32(pg_commerce_result(0, 3));
	if (nbuckets == 0)
		return BUCKET_NO_SUCH_ID;
	if (total < quantity)
		return BUCKET_NOT_ENOUGH;

	if (largest >= quantity &&
		take_one(&set->take_waiting, id, quantity, MyProcPid % nbuckets, first_bucket))
		return BUCKET_TAKEN;

	return take_gathered(set, id, quantity, first_bucket) ? BUCKET_TAKEN : BUCKET_NOT_ENOUGH;
}

/* The sum of id's buckets as this statement sees it (its own changes included). */
int64
pg_commerce_bucket_total(BucketSet *set, int64 id)
{
	Datum		key = Int64GetDatum(id);

	if (pg_commerce_execute(&set->total, &key, NULL, 1) != 1)
		elog(ERROR, "bucket total returned no row");
	return DatumGetInt64(pg_commerce_result(0, 2));
}
