/*
 * module.c
 *      Module magic, GUCs and the version of pg_commerce's shared library.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "pg_commerce.h"

PG_MODULE_MAGIC;

int			pg_commerce_stock_buckets = 8;
int			pg_commerce_coupon_buckets = 64;

void		_PG_init(void);

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
