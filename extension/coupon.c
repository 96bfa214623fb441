/*
 * coupon.c
 *      commerce.issue_coupon: first come, first served coupon issuance.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#include "pg_commerce.h"

/* What a refusal needs, read from one snapshot (see first_look). */
typedef struct CouponFirstLook
{
	bool		coupon_found;
	TimestampTz valid_from;
	bool		valid_until_null;
	TimestampTz valid_until;
	bool		user_found;
	bool		already_issued;
	bool		available;		/* committed remaining quantity > 0 */
} CouponFirstLook;

/*
 * The coupon's window, whether the user exists and already holds the coupon,
 * and whether any committed quantity remains, all from one snapshot.  Most calls of
 * a flash sale end here, so these are index probes (key_lookup.c) rather
 * than a statement: half the cost of a refusal.  Once the coupon is hinted
 * sold out (sold_out_hint.c) its buckets are not read at all; the coupon,
 * user and issued-copy probes still run, so an unknown user, a coupon out of
 * its window and a user who holds the coupon get their own answers.
 */
static void
first_look(int64 user_id, int64 coupon_id, CouponFirstLook *look)
{
	SoldOutTicket ticket;
	bool		hinted = pg_commerce_sold_out_look(LOOKUP_COUPON_BUCKETS, coupon_id, &ticket);
	Snapshot	snapshot = pg_commerce_snapshot_begin();	/* after the ticket */
	KeyLookup	coupon;
	int64		pair[2] = {coupon_id, user_id};
	bool		empty = false;

	memset(look, 0, sizeof(*look));
	pg_commerce_lookup_begin(&coupon, LOOKUP_COUPON, snapshot, &coupon_id);
	if (pg_commerce_lookup_next(&coupon))
	{
		bool		isnull;

		look->coupon_found = true;
		look->valid_from = DatumGetTimestampTz(pg_commerce_lookup_value(&coupon, "valid_from", &isnull));
		look->valid_until = DatumGetTimestampTz(pg_commerce_lookup_value(&coupon, "valid_until",
																		  &look->valid_until_null));
	}
	pg_commerce_lookup_end(&coupon);
	if (look->coupon_found)
	{
		look->user_found = pg_commerce_row_exists(LOOKUP_USER, snapshot, &user_id);
		look->already_issued = pg_commerce_row_exists(LOOKUP_ISSUED_COUPON, snapshot, pair);
		look->available = !hinted &&
			pg_commerce_buckets_hold(LOOKUP_COUPON_BUCKETS, snapshot, coupon_id, 1, &empty);
	}
	pg_commerce_snapshot_end(snapshot);
	if (empty)
		pg_commerce_sold_out_set(&ticket);
}

/* ON CONFLICT: the unique key is the last guard behind the advisory lock. */
static KeptPlan insert_issued = KEPT_PLAN(
	"WITH ic AS ("
	"  INSERT INTO commerce.issued_coupons (coupon_id, user_id) VALUES ($1, $2)"
	"  ON CONFLICT (coupon_id, user_id) DO NOTHING"
	"  RETURNING id),"
	" event AS ("
	"  INSERT INTO commerce.outbox (event_type, aggregate_id, payload)"
	"  SELECT 'coupon_issued', ic.id, pg_catalog.jsonb_build_object("
	"    'issued_coupon_id', ic.id, 'coupon_id', $1, 'user_id', $2)"
	"  FROM ic)"
	" SELECT id FROM ic",
	2, INT8OID, INT8OID);

static void
already_issued_error(int64 user_id, int64 coupon_id)
{
	commerce_error(COMMERCE_COUPON_ALREADY_ISSUED,
				   errmsg("coupon already issued to this user"),
				   errdetail("User " INT64_FORMAT " already holds coupon " INT64_FORMAT ".", user_id, coupon_id));
}

static void
sold_out_error(int64 coupon_id)
{
	commerce_error(COMMERCE_COUPON_SOLD_OUT,
				   errmsg("coupon sold out"),
				   errdetail("All units of coupon " INT64_FORMAT " have been issued.", coupon_id));
}

/*
 * commerce.issue_coupon(user_id bigint, coupon_id bigint) RETURNS bigint
 *
 * Issues one unit of the coupon to the user and returns the issued coupon's
 * id.  Locks, in the global order: the advisory lock (coupon, user), which
 * serialises the same user's duplicate attempts so the second one sees the
 * first and answers COUPON_ALREADY_ISSUED rather than COUPON_SOLD_OUT; then
 * one or more of the coupon's quantity buckets (buckets.c).  The unique key
 * (coupon_id, user_id) is the last guard.
 *
 * A coupon whose committed remaining quantity is 0 is refused before any
 * lock.  That is never a false "sold out" and never hides a duplicate: an
 * uncommitted issuance still counts in the committed quantity (so a sum of 0
 * means every unit went to a committed holder), and the same snapshot shows
 * whether this user is one of them.
 */
PG_FUNCTION_INFO_V1(pg_commerce_issue_coupon);
Datum
pg_commerce_issue_coupon(PG_FUNCTION_ARGS)
{
	int64		user_id;
	int64		coupon_id;
	int64		pair[2];
	Datum		values[2];
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int32		bucket;
	int64		issued_id;
	CouponFirstLook look;
	Snapshot	snapshot;
	bool		duplicate;

	pg_commerce_require_read_committed("issue_coupon");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		commerce_error(COMMERCE_INVALID_ARGUMENT, errmsg("user_id and coupon_id must not be null"));
	user_id = PG_GETARG_INT64(0);
	coupon_id = PG_GETARG_INT64(1);
	pg_commerce_check_id("user_id", user_id);
	pg_commerce_check_id("coupon_id", coupon_id);

	first_look(user_id, coupon_id, &look);
	if (!look.coupon_found)
		pg_commerce_not_found("coupon", coupon_id);
	if (!look.user_found)
		pg_commerce_not_found("user", user_id);
	if (now < look.valid_from || (!look.valid_until_null && now >= look.valid_until))
	{
		/* timestamptz_to_str returns a static buffer: copy each result */
		char	   *from = pstrdup(timestamptz_to_str(look.valid_from));
		char	   *until = look.valid_until_null ? "further notice" :
			pstrdup(timestamptz_to_str(look.valid_until));

		commerce_error(COMMERCE_COUPON_NOT_ACTIVE,
					   errmsg("coupon is not being issued now"),
					   errdetail("Coupon " INT64_FORMAT " is issued from %s until %s.", coupon_id, from, until));
	}
	if (look.already_issued)
		already_issued_error(user_id, coupon_id);
	if (!look.available)
		sold_out_error(coupon_id);

	pair[0] = coupon_id;
	pair[1] = user_id;
	pg_commerce_advisory_xact_lock(PG_COMMERCE_LOCK_COUPON_USER, pair, sizeof(pair));

	/* a duplicate attempt that was in flight at first_look has committed now */
	snapshot = pg_commerce_snapshot_begin();
	duplicate = pg_commerce_row_exists(LOOKUP_ISSUED_COUPON, snapshot, pair);
	pg_commerce_snapshot_end(snapshot);
	if (duplicate)
		already_issued_error(user_id, coupon_id);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = Int64GetDatum(coupon_id);
	values[1] = Int64GetDatum(user_id);

	if (pg_commerce_bucket_take(&pg_commerce_coupon_buckets_set, coupon_id, 1, &bucket) != BUCKET_TAKEN)
		sold_out_error(coupon_id);

	if (pg_commerce_execute(&insert_issued, values, NULL, 1) == 0)
		already_issued_error(user_id, coupon_id);
	issued_id = DatumGetInt64(pg_commerce_result(0, 1));

	SPI_finish();
	PG_RETURN_INT64(issued_id);
}
