/*
 * errors.c
 *      The error table of commerce_errors.h, as SQLSTATEs for ereport and as
 *      SQL (commerce.error_codes, commerce.raise).
 */
#include "postgres.h"

#include "fmgr.h"
#include "access/xact.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "pg_commerce.h"

typedef struct ErrorRow
{
	const char *name;
	const char *sqlstate;
	int			http_status;
	const char *condition;
} ErrorRow;

#define PG_COMMERCE_ERROR_ROW(name, sqlstate, http, condition) {#name, sqlstate, http, condition},
static const ErrorRow error_rows[] = {
	COMMERCE_ERROR_TABLE(PG_COMMERCE_ERROR_ROW)
};
#undef PG_COMMERCE_ERROR_ROW

StaticAssertDecl(lengthof(error_rows) == COMMERCE_ERROR_COUNT,
				 "error table and enum disagree");

int
pg_commerce_errcode(CommerceError error)
{
	const char *s;

	Assert(error >= 0 && error < COMMERCE_ERROR_COUNT);
	s = error_rows[error].sqlstate;
	return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

void
pg_commerce_not_found(const char *what, int64 id)
{
	commerce_error(COMMERCE_NOT_FOUND,
				   errmsg("%s not found", what),
				   errdetail("No %s has id " INT64_FORMAT ".", what, id));
	pg_unreachable();
}

/* An id argument must be positive: INVALID_ARGUMENT naming it otherwise. */
void
pg_commerce_check_id(const char *name, int64 id)
{
	if (id <= 0)
		commerce_error(COMMERCE_INVALID_ARGUMENT,
					   errmsg("%s must be a positive integer", name),
					   errdetail("%s was " INT64_FORMAT ".", name, id));
}

/*
 * The functions that take buckets need READ COMMITTED: each statement must
 * see the buckets as last committed, so that a bucket emptied or refilled by
 * another transaction is skipped or used, and a row updated since the
 * transaction began is locked in its new version.  At REPEATABLE READ or
 * SERIALIZABLE they would fail with serialization errors in every flood, and
 * their "sold out" answers would come from a stale snapshot.
 */
void
pg_commerce_require_read_committed(const char *function)
{
	/*
	 * READ UNCOMMITTED behaves as READ COMMITTED in PostgreSQL; the other
	 * two levels keep one snapshot for the whole transaction.
	 */
	if (IsolationUsesXactSnapshot())
		commerce_error(COMMERCE_READ_COMMITTED_REQUIRED,
					   errmsg("%s must run at isolation level READ COMMITTED", function),
					   errdetail("The transaction runs at %s.",
								 IsolationIsSerializable() ? "SERIALIZABLE" : "REPEATABLE READ"),
					   errhint("Start the transaction with BEGIN ISOLATION LEVEL READ COMMITTED, "
							   "or set default_transaction_isolation to 'read committed'."));
}

/*
 * commerce.require_read_committed(function text) RETURNS void, for the
 * PL/pgSQL functions that take buckets.
 */
PG_FUNCTION_INFO_V1(pg_commerce_require_read_committed_sql);
Datum
pg_commerce_require_read_committed_sql(PG_FUNCTION_ARGS)
{
	pg_commerce_require_read_committed(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/*
 * commerce.error_codes() RETURNS TABLE (sqlstate, code, http_status, condition)
 */
PG_FUNCTION_INFO_V1(pg_commerce_error_codes);
Datum
pg_commerce_error_codes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < COMMERCE_ERROR_COUNT; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(error_rows[i].sqlstate);
		values[1] = CStringGetTextDatum(error_rows[i].name);
		values[2] = Int32GetDatum(error_rows[i].http_status);
		values[3] = CStringGetTextDatum(error_rows[i].condition);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * commerce.raise(code text, message text, detail text, hint text) RETURNS void
 *
 * Lets the SQL-language functions raise the same SQLSTATEs as the C code,
 * looked up by the stable code string.
 */
PG_FUNCTION_INFO_V1(pg_commerce_raise);
Datum
pg_commerce_raise(PG_FUNCTION_ARGS)
{
	char	   *code;
	char	   *message;
	char	   *detail = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *hint = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		elog(ERROR, "commerce.raise needs a code and a message");
	code = text_to_cstring(PG_GETARG_TEXT_PP(0));
	message = text_to_cstring(PG_GETARG_TEXT_PP(1));

	for (int i = 0; i < COMMERCE_ERROR_COUNT; i++)
	{
		if (strcmp(error_rows[i].name, code) == 0)
			commerce_error((CommerceError) i,
						   errmsg_internal("%s", message),
						   detail ? errdetail_internal("%s", detail) : 0,
						   hint ? errhint("%s", hint) : 0);
	}
	elog(ERROR, "unknown pg_commerce error code \"%s\"", code);
	PG_RETURN_VOID();
}
