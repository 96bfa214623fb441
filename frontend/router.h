/*
 * router.h
 *      Dispatch: the h2o handler that checks a request's framing and runs
 *      the handler of its route (routes.h), and the JSON shape of the errors
 *      h2o answers by itself.
 */
#ifndef COMMERCE_HTTP_ROUTER_H
#define COMMERCE_HTTP_ROUTER_H

#include "h2o_includes.h"
#include "routes.h"

/*
 * The h2o on_req callback of the one handler registered at "/".  It first
 * refuses (400, connection closed) a request framed against RFC 9112:
 * Content-Length with Transfer-Encoding, several Content-Lengths or
 * Transfer-Encodings, one other than "chunked", obs-fold, no Host in HTTP/1.1.
 */
int router_on_req(h2o_handler_t *self, h2o_req_t *req);

/*
 * Installs on pathconf the filter that turns the text/plain errors h2o
 * answers by itself (parse errors, 413, 417, broken chunked bodies) into the
 * daemon's JSON error shape; main.c installs it on "/" and on the host's
 * fallback path, which h2o uses for requests it refuses before routing.
 */
void router_register_json_errors(h2o_pathconf_t *pathconf);

#endif
