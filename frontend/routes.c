/*
 * routes.c
 *      The routes' labels, as metrics and log lines name them.
 */
#include "routes.h"

const char *const route_labels[ROUTE__COUNT] = {
#define ROUTE_LABEL(name, method, pattern, handler, access, reads) method " " pattern,
	ROUTE_TABLE(ROUTE_LABEL)
#undef ROUTE_LABEL
	"unmatched",
};
