/*
 * commerce_errors.h
 *      The one table of pg_commerce's error conditions.
 *
 * Every error the extension raises on purpose carries a SQLSTATE of the
 * extension's own class "PC" (class letters P..Z are left to implementations
 * by the SQL standard, and PostgreSQL itself does not use "PC").  Each row
 * ties that SQLSTATE to the stable code string that API clients see and to
 * the HTTP status that commerce-http answers with.
 *
 * This header is deliberately free of PostgreSQL includes so that the daemon
 * (frontend/) includes the very same table: the SQLSTATE -> code -> status
 * mapping exists once.  docs/errors.md is checked against it by the tests
 * (commerce.error_codes() exposes it to SQL).
 *
 * Rows whose condition says "(commerce-http)" are answered by the daemon
 * alone, before or instead of a database call; the extension never raises
 * them, and their SQLSTATE only keeps one numbering for every code.
 *
 * X(name, sqlstate, http_status, condition)
 */
#ifndef COMMERCE_ERRORS_H
#define COMMERCE_ERRORS_H

#define COMMERCE_ERROR_TABLE(X) \
	X(INVALID_ARGUMENT,      "PC400", 400, "malformed input, bad quantity, empty order") \
	X(NOT_FOUND,             "PC404", 404, "unknown user, product, coupon, order") \
	X(OUT_OF_STOCK,          "PC409", 409, "out of stock") \
	X(COUPON_SOLD_OUT,       "PC410", 409, "coupon quantity exhausted") \
	X(COUPON_ALREADY_ISSUED, "PC411", 409, "coupon already issued to this user") \
	X(COUPON_NOT_USABLE,     "PC422", 422, "coupon not usable (not owned, used, expired, minimum not met)") \
	X(COUPON_NOT_ACTIVE,     "PC423", 422, "coupon outside its issue window") \
	X(INSUFFICIENT_BALANCE,  "PC402", 402, "wallet balance too low") \
	X(IDEMPOTENCY_MISMATCH,  "PC424", 422, "idempotency key reused with another request") \
	X(QUANTITY_LIMIT_EXCEEDED, "PC425", 422, "lines of one product sum over the per-order quantity limit") \
	X(BALANCE_LIMIT_EXCEEDED, "PC426", 422, "charge would take the wallet over pg_commerce.max_balance") \
	X(READ_COMMITTED_REQUIRED, "PC500", 500, "called in a transaction whose isolation level is not READ COMMITTED") \
	X(UNAUTHENTICATED,       "PC401", 401, "no valid bearer token (commerce-http)") \
	X(FORBIDDEN,             "PC403", 403, "the token's user may not act for the user the request names (commerce-http)") \
	X(UNSUPPORTED_MEDIA_TYPE, "PC415", 415, "request body not sent as application/json (commerce-http)") \
	X(TOO_MANY_REQUESTS,     "PC429", 429, "the caller's rate limit is used up (commerce-http)") \
	X(UNAVAILABLE,           "PC503", 503, "database unreachable, pool exhausted, overloaded")

/* The rows by name, in table order: COMMERCE_INVALID_ARGUMENT, ... (both programs). */
#define COMMERCE_ERROR_ENUM(name, sqlstate, http, condition) COMMERCE_##name,
typedef enum CommerceError
{
	COMMERCE_ERROR_TABLE(COMMERCE_ERROR_ENUM)
	COMMERCE_ERROR_COUNT
} CommerceError;
#undef COMMERCE_ERROR_ENUM

/* The SQLSTATE class shared by every row above. */
#define COMMERCE_SQLSTATE_CLASS "PC"

#endif							/* COMMERCE_ERRORS_H */
