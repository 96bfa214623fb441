/*
 * auth.h
 *      Who is calling: the bearer token of a request, verified with libjwt
 *      against the one key and algorithm of --jwt-key / --jwt-alg.
 *
 * A token is accepted when its signature verifies with that key, its header
 * names exactly that algorithm, exp lies in the future and nbf (if any) in
 * the past (both with AUTH_LEEWAY_SECONDS of clock skew), iss and aud match
 * --jwt-issuer / --jwt-audience when those are given, and sub is a user id
 * written as a decimal string.  role "admin" marks an operator.
 */
#ifndef COMMERCE_HTTP_AUTH_H
#define COMMERCE_HTTP_AUTH_H

#include <stdint.h>
#include "h2o_includes.h"

/* Clock skew tolerated between the token's issuer and this machine. */
#define AUTH_LEEWAY_SECONDS 30

typedef struct auth_principal {
	int authenticated;			/* 0 with --auth none: nobody is known */
	int64_t user_id;			/* the token's sub */
	int is_admin;				/* role "admin" */
} auth_principal_t;

/*
 * Reads and checks the key file once at start (before the threads); on a
 * problem prints why and exits 2.  Logs a warning with --auth none.
 */
void auth_init(const char *argv0);

/*
 * The caller of req.  0 and *out filled when the request carries a valid
 * token; -1 and *why (a constant string naming the problem) when not.  With
 * --auth none always 0 with out->authenticated = 0.  Thread-safe.
 */
int auth_verify_request(h2o_req_t *req, auth_principal_t *out, const char **why);

#endif
