/*
 * handlers.h
 *      One function per route of routes.h; `id` is the route's {id} path
 *      segment (empty when the pattern has none).
 */
#ifndef COMMERCE_HTTP_HANDLERS_H
#define COMMERCE_HTTP_HANDLERS_H

#include "call.h"
#include "routes.h"

#define HANDLER_DECLARE(name, method, pattern, handler, access, reads) void handler(call_t *call, h2o_iovec_t id);
ROUTE_TABLE(HANDLER_DECLARE)
#undef HANDLER_DECLARE

#endif
