/*
 * module.c
 *      Module magic, GUCs and the version of pg_commerce's shared library.
 */
#include "postgres.h"

#include <errno.h>
#include <stdlib.h>

#include "fmgr.h"
#include "utils/timestamp.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "pg_commerce.h"

PG_MODULE_MAGIC;

int			pg_commerce_stock_buckets = 8;
int			pg_commerce_coupon_buckets = 64;
static int	idempotency_ttl_s = 86400;

/*
 * pg_commerce.max_balance: the wallet ceiling, in the same unit as prices.
 * PostgreSQL 15 has no 64-bit integer GUCs, so the setting is a string that
 * the check hook parses; max_balance is what the last accepted string says.
 * Ten billion is far above any shop wallet and far below bigint's 9.2e18.
 */
#define PG_COMMERCE_MAX_BALANCE_DEFAULT "10000000000"
static char *max_balance_string = NULL;
static int64 max_balance = 0;	/* set by assign_max_balance from the boot value on */

void		_PG_init(void);

static bool
parse_max_balance(const char *value, int64 *result)
{
	char	   *end;
	long long	parsed;

	errno = 0;
	parsed = strtoll(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || parsed <= 0)
		return false;
	*result = (int64) parsed;
	return true;
}

static bool
check_max_balance(char **newval, void **extra, GucSource source)
{
	int64	   *parsed = malloc(sizeof(int64));	/* GUC extras are free()d */

	if (parsed == NULL)
	{
		GUC_check_errdetail("out of memory");
		return false;
	}
	if (*newval == NULL || !parse_max_balance(*newval, parsed))
	{
		GUC_check_errdetail("pg_commerce.max_balance must be an integer from 1 to 9223372036854775807.");
		free(parsed);
		return false;
	}
	(void) source;
	*extra = parsed;
	return true;
}

static void
assign_max_balance(const char *newval, void *extra)
{
	(void) newval;				/* already parsed into extra */
	max_balance = *(int64 *) extra;
}

void
_PG_init(void)
{
	DefineCustomIntVariable("pg_commerce.stock_buckets",
							"Default number of stock buckets of a new product.",
							"More buckets let more concurrent orders of one product proceed "
							"without waiting; create_product(..., buckets => n) overrides it.",
							&pg_commerce_stock_buckets,
							8, 1, 1024,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_commerce.coupon_buckets",
							"Default number of quantity buckets of a new coupon.",
							"At least the number of concurrent issuers keeps them from waiting; "
							"create_coupon(..., buckets => n) overrides it.",
							&pg_commerce_coupon_buckets,
							64, 1, 1024,
							PGC_USERSET, 0, NULL, NULL, NULL);
	/*
	 * PGC_SUSET: a wallet owner's session must not raise its own ceiling;
	 * superusers set it per database or cluster (ALTER DATABASE ... SET).
	 */
	DefineCustomStringVariable("pg_commerce.max_balance",
							   "Highest balance a wallet may reach by charges.",
							   "A charge is refused (BALANCE_LIMIT_EXCEEDED) when the balance plus "
							   "everything the user's paid orders could refund would exceed it, "
							   "so a refund can always be paid and no sum overflows.",
							   &max_balance_string,
							   PG_COMMERCE_MAX_BALANCE_DEFAULT,
							   PGC_SUSET, 0,
							   check_max_balance, assign_max_balance, NULL);
	DefineCustomIntVariable("pg_commerce.idempotency_ttl",
							"How long the answer to a request with an Idempotency-Key is kept.",
							"A key older than this is treated as new; commerce.purge_idempotency_keys() "
							"deletes the expired answers.",
							&idempotency_ttl_s,
							86400, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	MarkGUCPrefixReserved("pg_commerce");
}

/*
 * commerce.default_buckets(kind text) RETURNS integer
 */
PG_FUNCTION_INFO_V1(pg_commerce_default_buckets);
Datum
pg_commerce_default_buckets(PG_FUNCTION_ARGS)
{
	text	   *kind = PG_GETARG_TEXT_PP(0);

	if (strcmp(text_to_cstring(kind), "stock") == 0)
		PG_RETURN_INT32(pg_commerce_stock_buckets);
	if (strcmp(text_to_cstring(kind), "coupon") == 0)
		PG_RETURN_INT32(pg_commerce_coupon_buckets);
	elog(ERROR, "unknown bucket kind \"%s\"", text_to_cstring(kind));
	PG_RETURN_NULL();
}

/*
 * commerce.max_balance() RETURNS bigint: the wallet ceiling now in force.
 */
PG_FUNCTION_INFO_V1(pg_commerce_max_balance);
Datum
pg_commerce_max_balance(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(max_balance);
}

/*
 * commerce.idempotency_ttl() RETURNS interval
 */
PG_FUNCTION_INFO_V1(pg_commerce_idempotency_ttl);
Datum
pg_commerce_idempotency_ttl(PG_FUNCTION_ARGS)
{
	Interval   *ttl = palloc0(sizeof(Interval));

	ttl->time = (int64) idempotency_ttl_s * USECS_PER_SEC;
	PG_RETURN_INTERVAL_P(ttl);
}
