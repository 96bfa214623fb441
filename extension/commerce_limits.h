/*
 * commerce_limits.h
 *      The bounds of what a caller may send, in one place for both programs:
 *      the extension refuses beyond them (PC400 INVALID_ARGUMENT), and
 *      commerce-http refuses the same before a call reaches the database
 *      (400 naming the field).  Plain macros, no PostgreSQL headers, so the
 *      daemon includes it as it includes commerce_errors.h.
 *
 * The install script (sql/: table CHECKs and the PL/pgSQL
 * functions) and docs/openapi.yaml write the same numbers; each is a
 * literal there, and tests/check-limits.py fails when one differs from this
 * file.  Lengths are in characters (code points).
 */
#ifndef COMMERCE_LIMITS_H
#define COMMERCE_LIMITS_H

/* one order's work and locks stay small */
#define COMMERCE_MAX_ORDER_LINES		100
#define COMMERCE_MAX_LINE_QUANTITY		10000

/* an Idempotency-Key; the daemon also allows only visible ASCII (bytes = characters) */
#define COMMERCE_MAX_IDEMPOTENCY_KEY	200

#define COMMERCE_MAX_NAME				200		/* a user's, a product's, a coupon's name */
#define COMMERCE_MAX_CATEGORY			100		/* a product's category; also a search keyword */
#define COMMERCE_MAX_COUPON_CODE		64

/*
 * popular_products(days, lim): its longest window, which is also how long
 * housekeeping keeps sales_stats (an older row is in no window), and its
 * largest limit, which is also how deep the precomputed ranking goes.
 */
#define COMMERCE_MAX_POPULAR_DAYS		365
#define COMMERCE_MAX_POPULAR_LIMIT		100

#endif
