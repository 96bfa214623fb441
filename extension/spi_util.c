/*
 * spi_util.c
 *      Kept SPI plans and the advisory lock helper.
 */
#include "postgres.h"

#include "fmgr.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"

#include "pg_commerce.h"

uint64
pg_commerce_execute(KeptPlan *kp, Datum *values, const char *nulls, long count)
{
	int			rc;

	if (kp->plan == NULL)
	{
		/*
		 * Every kept statement is a key lookup or a small write whose best
		 * plan does not depend on the values; a generic plan skips the
		 * planner on every call (custom plans cost ~25% of place_order).
		 */
		SPIPlanPtr	plan = SPI_prepare_cursor(kp->sql, kp->nargs, kp->argtypes,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed (%s) for: %s",
				 SPI_result_code_string(SPI_result), kp->sql);
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		kp->plan = plan;
	}
	rc = SPI_execute_plan(kp->plan, values, nulls, false, count);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed (%s) for: %s",
			 SPI_result_code_string(rc), kp->sql);
	return SPI_processed;
}

bool
pg_commerce_result_isnull(uint64 row, int col)
{
	bool		isnull;

	Assert(row < SPI_processed);
	(void) SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
	return isnull;
}

Datum
pg_commerce_result(uint64 row, int col)
{
	bool		isnull;
	Datum		d;

	Assert(row < SPI_processed);
	d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
	if (isnull)
		elog(ERROR, "unexpected null in column %d", col);
	return d;
}

/*
 * The same lock as pg_advisory_xact_lock(space, hash(key)): visible in
 * pg_locks as an advisory lock with objsubid 2, released at transaction end.
 */
void
pg_commerce_advisory_xact_lock(int32 space, const void *key, Size keylen)
{
	LOCKTAG		tag;
	uint32		hash = hash_bytes((const unsigned char *) key, (int) keylen);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) space, hash, 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * The advisory lock of one user's idempotency key (user id, then the key's
 * bytes), held until the transaction ends: place_order and keyed_call take
 * the same one.
 */
void
pg_commerce_lock_user_key(int64 user_id, text *key)
{
	Size		keylen = VARSIZE_ANY_EXHDR(key);
	char	   *lockkey = palloc(sizeof(int64) + keylen);

	memcpy(lockkey, &user_id, sizeof(int64));
	memcpy(lockkey + sizeof(int64), VARDATA_ANY(key), keylen);
	pg_commerce_advisory_xact_lock(PG_COMMERCE_LOCK_IDEMPOTENCY, lockkey, sizeof(int64) + keylen);
	pfree(lockkey);
}

/*
 * commerce.lock_idempotency_key(user_id bigint, key text) RETURNS void: the
 * lock place_order takes for (user, key), for commerce.keyed_call.
 */
PG_FUNCTION_INFO_V1(pg_commerce_lock_idempotency_key);
Datum
pg_commerce_lock_idempotency_key(PG_FUNCTION_ARGS)
{
	int64		user_id = PG_GETARG_INT64(0);
	text	   *key = PG_GETARG_TEXT_PP(1);

	pg_commerce_lock_user_key(user_id, key);
	PG_RETURN_VOID();
}
