/*
 * main.c
 *      commerce-http: the REST front of pg_commerce.
 *
 * The main thread configures h2o, starts the workers and then only waits
 * for SIGTERM/SIGINT (blocked in every thread, taken with sigwait), so no
 * code runs in signal context.
 */
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_log.h"
#include "auth.h"
#include "config.h"
#include "rate_limit.h"
#include "h2o_includes.h"
#include "router.h"
#include "worker.h"

static h2o_globalconf_t globalconf;

/* Every client connection is a descriptor: take the hard limit, not the soft 1024. */
static void
raise_fd_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		setrlimit(RLIMIT_NOFILE, &limit);
	}
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
		limit.rlim_cur < (rlim_t) commerce_config.max_connections + 64)
		commerce_log(COMMERCE_WARNING, "open-file limit %llu is below --max-connections %d",
					 (unsigned long long) limit.rlim_cur, commerce_config.max_connections);
}

int
main(int argc, char **argv)
{
	h2o_hostconf_t *hostconf;
	h2o_pathconf_t *pathconf;
	h2o_handler_t *handler;
	sigset_t stop_signals;
	int sig;

	commerce_config_load(argc, argv);
	auth_init(argv[0]);
	rate_limit_init();
	access_log_open(argv[0]);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	h2o_config_init(&globalconf);
	globalconf.server_name = h2o_iovec_init(H2O_STRLIT("commerce-http"));
	/*
	 * h2o answers bodies over its own limit with a plain-text 413; keep its
	 * limit above ours so that the usual oversized body gets our JSON 413,
	 * while h2o still bounds what it buffers.
	 */
	globalconf.max_request_entity_size = commerce_config.max_body * 4;
	globalconf.http1.upgrade_to_http2 = 0;
	/*
	 * h2o 2.2.5 runs one timer per HTTP/1 connection from the moment it
	 * waits for a request (after accepting, and after each response) until
	 * the request, body included, is in: a client that sends half a head
	 * holds its connection only this long.
	 */
	globalconf.http1.req_timeout = (uint64_t) commerce_config.header_timeout_ms;
	hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	pathconf = h2o_config_register_path(hostconf, "/", 0);
	handler = h2o_create_handler(pathconf, sizeof(*handler));
	handler->on_req = router_on_req;
	/* before workers_start: each filter takes a config slot that h2o_context_init sizes */
	router_register_json_errors(pathconf);
	router_register_json_errors(&hostconf->fallback_path);

	if (workers_start(&globalconf) != 0)
		return 1;
	commerce_log(COMMERCE_LOG, "listening on %s:%u (%d threads, %d connections each)",
			commerce_config.listen_host, commerce_config.listen_port, commerce_config.threads,
			commerce_config.pool_size);

	while (sigwait(&stop_signals, &sig) != 0)
		;
	commerce_log(COMMERCE_LOG, "%s, draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	commerce_stop_requested = 1;
	workers_join();
	/* the workers are parked: their last lines can be written from here */
	for (int i = 0; i < worker_count; i++)
		if (workers[i].access_log.len > 0)
			access_log_flush(&workers[i].access_log);
	commerce_log(COMMERCE_LOG, "stopped");
	return 0;
}
