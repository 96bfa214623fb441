/*
 * order_items.h
 *      The parsed `items` of commerce.place_order.
 */
#ifndef ORDER_ITEMS_H
#define ORDER_ITEMS_H

#include "utils/jsonb.h"

#include "pg_commerce.h"

#include "commerce_limits.h"

typedef struct OrderLine
{
	int64		product_id;
	int32		quantity;
	int64		unit_price;		/* filled in by place_order */
	int32		bucket;			/* the stock bucket taken from first */
	bool		hinted_sold_out;	/* sold_out_hint.c, looked before the first snapshot */
	SoldOutTicket ticket;
} OrderLine;

typedef struct OrderItems
{
	int			count;
	OrderLine	lines[FLEXIBLE_ARRAY_MEMBER];	/* ascending product_id, unique */
} OrderItems;

/* Validates items (errors name the offending entry and field). */
extern OrderItems *pg_commerce_parse_items(Jsonb *items);

/* The canonical text of a request, compared on idempotent replays. */
extern char *pg_commerce_order_fingerprint(const OrderItems *items, bool has_coupon,
										   int64 coupon_id);

#endif							/* ORDER_ITEMS_H */
