/*
 * order_items.c
 *      Parsing and validating the `items` argument of commerce.place_order.
 *
 * items is a JSON array of objects {"product_id": <id>, "quantity": <n>}
 * with no other keys.  Lines naming the same product are merged, and the
 * result is sorted by product id: that is the order in which place_order
 * locks stock (the global lock order), and the canonical form that an
 * idempotency key's fingerprint is made of.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "order_items.h"

static void
invalid_item(int index, const char *message, const char *detail)
{
	commerce_error(COMMERCE_INVALID_ARGUMENT,
				   errmsg("items[%d]: %s", index, message),
				   detail ? errdetail_internal("%s", detail) : 0,
				   errhint("items must look like [{\"product_id\": 1, \"quantity\": 2}]."));
}

/*
 * The integer value of a JSON number member, or an error naming it.  Goes
 * through the numeric's text so that fractions (1.5, and 1.0, whose numeric
 * keeps its scale) and out-of-range values are rejected rather than rounded.
 * jsonb keeps a number's value and scale, not its spelling: 1e2 arrives as
 * the numeric 100 and is taken as 100, the integer that JSON number denotes.
 * (commerce-http's own validation is stricter and refuses any number that
 * JSON text spells with a fraction or an exponent.)
 */
static int64
member_integer(JsonbContainer *object, const char *key, int index, int64 min, int64 max)
{
	JsonbValue *v = getKeyJsonValueFromContainer(object, key, strlen(key), NULL);
	char	   *text;
	char	   *end;
	long long	value;

	if (v == NULL)
		invalid_item(index, psprintf("%s is required", key), NULL);
	if (v->type != jbvNumeric)
		invalid_item(index, psprintf("%s must be a number", key), NULL);
	text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	errno = 0;
	value = strtoll(text, &end, 10);
	if (*end != '\0')
		invalid_item(index, psprintf("%s must be an integer", key),
					 psprintf("%s was %s.", key, text));
	if (errno == ERANGE || value < min || value > max)
		invalid_item(index, psprintf("%s must be between " INT64_FORMAT " and " INT64_FORMAT, key, min, max),
					 psprintf("%s was %s.", key, text));
	return (int64) value;
}

static int
compare_lines(const void *a, const void *b)
{
	const OrderLine *la = a;
	const OrderLine *lb = b;

	if (la->product_id != lb->product_id)
		return la->product_id < lb->product_id ? -1 : 1;
	return 0;
}

OrderItems *
pg_commerce_parse_items(Jsonb *items)
{
	OrderItems *result;
	int			count;
	int			n = 0;

	if (!JB_ROOT_IS_ARRAY(items) || JB_ROOT_IS_SCALAR(items))
		commerce_error(COMMERCE_INVALID_ARGUMENT,
					   errmsg("items must be a JSON array"),
					   errhint("items must look like [{\"product_id\": 1, \"quantity\": 2}]."));
	count = JB_ROOT_COUNT(items);
	if (count == 0)
		commerce_error(COMMERCE_INVALID_ARGUMENT,
					   errmsg("items must not be empty"),
					   errdetail("An order needs at least one item."));
	if (count > COMMERCE_MAX_ORDER_LINES)
		commerce_error(COMMERCE_INVALID_ARGUMENT,
					   errmsg("items must have at most %d entries", COMMERCE_MAX_ORDER_LINES),
					   errdetail("items had %d entries.", count));

	result = palloc(offsetof(OrderItems, lines) + sizeof(OrderLine) * count);
	for (int i = 0; i < count; i++)
	{
		JsonbValue *element = getIthJsonbValueFromContainer(&items->root, i);
		JsonbContainer *object;

		if (element->type != jbvBinary || !JsonContainerIsObject(element->val.binary.data))
			invalid_item(i, "must be an object", NULL);
		object = element->val.binary.data;
		result->lines[i].product_id = member_integer(object, "product_id", i, 1, PG_INT64_MAX);
		result->lines[i].quantity = (int32) member_integer(object, "quantity", i, 1,
														   COMMERCE_MAX_LINE_QUANTITY);
		if (JsonContainerSize(object) != 2)
			invalid_item(i, "unknown key", "Only product_id and quantity are allowed.");
	}

	/* merge lines of the same product, in ascending product order */
	qsort(result->lines, count, sizeof(OrderLine), compare_lines);
	for (int i = 0; i < count; i++)
	{
		if (n > 0 && result->lines[n - 1].product_id == result->lines[i].product_id)
		{
			int32		sum = result->lines[n - 1].quantity + result->lines[i].quantity;

			/*
			 * Each line is valid on its own, so this is not malformed input
			 * (400) but a limit on what one order may ask for (422).
			 */
			if (sum > COMMERCE_MAX_LINE_QUANTITY)
				commerce_error(COMMERCE_QUANTITY_LIMIT_EXCEEDED,
							   errmsg("quantity of product " INT64_FORMAT " must be at most %d in one order",
									  result->lines[i].product_id, COMMERCE_MAX_LINE_QUANTITY),
							   errdetail("Its lines sum to more than that."));
			result->lines[n - 1].quantity = sum;
		}
		else
			result->lines[n++] = result->lines[i];
	}
	result->count = n;
	return result;
}

char *
pg_commerce_order_fingerprint(const OrderItems *items, bool has_coupon, int64 coupon_id)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (has_coupon)
		appendStringInfo(&buf, "coupon=" INT64_FORMAT ";", coupon_id);
	else
		appendStringInfoString(&buf, "coupon=none;");
	for (int i = 0; i < items->count; i++)
		appendStringInfo(&buf, "%s" INT64_FORMAT "x%d", i ? "," : "items=",
						 items->lines[i].product_id, items->lines[i].quantity);
	return buf.data;
}
