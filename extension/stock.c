/*
 * stock.c
 *      commerce.decrement_stock: take units of one product's stock.
 */
#include "postgres.h"

#include "fmgr.h"

#include "pg_commerce.h"

/*
 * commerce.decrement_stock(product_id bigint, quantity integer) RETURNS integer
 *
 * Takes `quantity` units of the product's stock and returns the stock left
 * (all buckets, as committed plus this transaction's change).  Locks one or
 * more of the product's stock buckets (buckets.c) until the transaction ends.
 */
PG_FUNCTION_INFO_V1(pg_commerce_decrement_stock);
Datum
pg_commerce_decrement_stock(PG_FUNCTION_ARGS)
{
	int64		product_id;
	int32		quantity;
	int32		bucket;
	int64		left;

	pg_commerce_require_read_committed("decrement_stock");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		commerce_error(COMMERCE_INVALID_ARGUMENT,
					   errmsg("product_id and quantity must not be null"));
	product_id = PG_GETARG_INT64(0);
	quantity = PG_GETARG_INT32(1);
	if (quantity <= 0)
		commerce_error(COMMERCE_INVALID_ARGUMENT,
					   errmsg("quantity must be a positive integer"),
					   errdetail("quantity was %d.", quantity));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	switch (pg_commerce_bucket_take(&pg_commerce_stock_buckets_set, product_id, quantity, &bucket))
	{
		case BUCKET_NO_SUCH_ID:
			pg_commerce_not_found("product", product_id);
			break;
		case BUCKET_NOT_ENOUGH:
			commerce_error(COMMERCE_OUT_OF_STOCK,
						   errmsg("out of stock"),
						   errdetail_plural("Product " INT64_FORMAT " has less than the %d unit asked for.",
											"Product " INT64_FORMAT " has less than the %d units asked for.",
											quantity, product_id, quantity),
						   errhint("Restock the product or order fewer units."));
			break;
		case BUCKET_TAKEN:
			break;
	}
	left = pg_commerce_bucket_total(&pg_commerce_stock_buckets_set, product_id);

	SPI_finish();
	PG_RETURN_INT32((int32) left);
}
