/*
 * module.c
 *      Module magic, GUCs and the version of pg_commerce's shared library.
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/timestamp.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "commerce_limits.h"
#include "pg_commerce.h"

PG_MODULE_MAGIC;

int			pg_commerce_stock_buckets = 8;
int			pg_commerce_coupon_buckets = 64;
static int	idempotency_ttl_s = 86400;

/* Retention (commerce.housekeeping, docs/housekeeping.md). */
static int	outbox_retention_s = 3600;
static int	housekeeping_batch = 50000;

/*
 * pg_commerce.popular_windows: the day counts whose popular_products
 * ranking commerce.refresh_popular() precomputes, as a comma-separated
 * list.  The check hook parses it into a PopularWindows (sorted, without
 * duplicates); popular_windows is what the last accepted string says.
 */
typedef struct PopularWindows
{
	int			n;
	int			days[COMMERCE_MAX_POPULAR_DAYS];
} PopularWindows;

#define PG_COMMERCE_POPULAR_WINDOWS_DEFAULT "1,3,7,30"
static char *popular_windows_string = NULL;
static PopularWindows popular_windows;	/* set by assign_popular_windows */
static int	popular_max_age_s = 300;

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

/*
 * "1, 3,7,30" -> {1, 3, 7, 30}; "" (or blanks) -> no window.  Each entry is
 * a whole number of days within popular_products' range; the order does not
 * matter and a repeated entry counts once.
 */
static bool
check_popular_windows(char **newval, void **extra, GucSource source)
{
	bool		seen[COMMERCE_MAX_POPULAR_DAYS + 1] = {false};
	PopularWindows *parsed;
	const char *p = *newval;

	(void) source;
	if (p == NULL)
		p = "";
	while (isspace((unsigned char) *p))
		p++;
	while (*p != '\0')
	{
		char	   *end;
		long		days;

		errno = 0;
		days = strtol(p, &end, 10);
		if (end == p || errno != 0 || days < 1 || days > COMMERCE_MAX_POPULAR_DAYS)
		{
			GUC_check_errdetail("pg_commerce.popular_windows must list whole numbers of days from 1 to %d, "
								"separated by commas.", COMMERCE_MAX_POPULAR_DAYS);
			return false;
		}
		seen[days] = true;
		p = end;
		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\0')
			break;
		if (*p != ',')
		{
			GUC_check_errdetail("pg_commerce.popular_windows must list whole numbers of days from 1 to %d, "
								"separated by commas.", COMMERCE_MAX_POPULAR_DAYS);
			return false;
		}
		p++;
		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\0')
		{
			GUC_check_errdetail("pg_commerce.popular_windows ends with a comma.");
			return false;
		}
	}

	parsed = malloc(sizeof(PopularWindows));	/* GUC extras are free()d */
	if (parsed == NULL)
	{
		GUC_check_errdetail("out of memory");
		return false;
	}
	parsed->n = 0;
	for (int days = 1; days <= COMMERCE_MAX_POPULAR_DAYS; days++)
		if (seen[days])
			parsed->days[parsed->n++] = days;
	*extra = parsed;
	return true;
}

static void
assign_popular_windows(const char *newval, void *extra)
{
	(void) newval;				/* already parsed into extra */
	popular_windows = *(PopularWindows *) extra;
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
	/*
	 * The retention and popular-products settings are SUSET like the TTL:
	 * they decide what the shop keeps and what every customer is shown, so
	 * a superuser sets them per database or cluster, not a session.
	 */
	DefineCustomIntVariable("pg_commerce.outbox_retention",
							"How long a delivered outbox event is kept before housekeeping removes it.",
							"commerce.housekeeping() deletes events acknowledged longer ago than this; "
							"an event not yet delivered is never removed.",
							&outbox_retention_s,
							3600, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_commerce.housekeeping_batch",
							"Rows commerce.housekeeping() removes from each table per call, at most.",
							"Bounds the transaction and its row locks; a call that reaches it says so "
							"(more = true) and the next call goes on.",
							&housekeeping_batch,
							50000, 1, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("pg_commerce.popular_windows",
							   "Day counts whose popular-products ranking commerce.refresh_popular() precomputes.",
							   "A comma-separated list of whole days (1 to 365); popular_products for one "
							   "of them reads the ranking while it is fresh, other days are computed live.",
							   &popular_windows_string,
							   PG_COMMERCE_POPULAR_WINDOWS_DEFAULT,
							   PGC_SUSET, 0,
							   check_popular_windows, assign_popular_windows, NULL);
	DefineCustomIntVariable("pg_commerce.popular_max_age",
							"How old a precomputed popular-products ranking may be and still be served.",
							"An older one (the scheduler stopped) is ignored and popular_products "
							"computes its answer live.",
							&popular_max_age_s,
							300, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	pg_commerce_sold_out_hint_init();
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

/* An interval of `seconds` (the GUCs in GUC_UNIT_S). */
static Interval *
seconds_interval(int seconds)
{
	Interval   *result = palloc0(sizeof(Interval));

	result->time = (int64) seconds * USECS_PER_SEC;
	return result;
}

/*
 * commerce.idempotency_ttl() RETURNS interval
 */
PG_FUNCTION_INFO_V1(pg_commerce_idempotency_ttl);
Datum
pg_commerce_idempotency_ttl(PG_FUNCTION_ARGS)
{
	PG_RETURN_INTERVAL_P(seconds_interval(idempotency_ttl_s));
}

/*
 * commerce.outbox_retention() RETURNS interval
 */
PG_FUNCTION_INFO_V1(pg_commerce_outbox_retention);
Datum
pg_commerce_outbox_retention(PG_FUNCTION_ARGS)
{
	PG_RETURN_INTERVAL_P(seconds_interval(outbox_retention_s));
}

/*
 * commerce.housekeeping_batch() RETURNS integer
 */
PG_FUNCTION_INFO_V1(pg_commerce_housekeeping_batch);
Datum
pg_commerce_housekeeping_batch(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(housekeeping_batch);
}

/*
 * commerce.popular_windows() RETURNS integer[]: the windows in force,
 * ascending (empty when the setting is empty).
 */
PG_FUNCTION_INFO_V1(pg_commerce_popular_windows);
Datum
pg_commerce_popular_windows(PG_FUNCTION_ARGS)
{
	Datum	   *elements = palloc(sizeof(Datum) * Max(popular_windows.n, 1));

	for (int i = 0; i < popular_windows.n; i++)
		elements[i] = Int32GetDatum(popular_windows.days[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elements, popular_windows.n, INT4OID,
										  sizeof(int32), true, TYPALIGN_INT));
}

/*
 * commerce.popular_max_age() RETURNS interval
 */
PG_FUNCTION_INFO_V1(pg_commerce_popular_max_age);
Datum
pg_commerce_popular_max_age(PG_FUNCTION_ARGS)
{
	PG_RETURN_INTERVAL_P(seconds_interval(popular_max_age_s));
}
