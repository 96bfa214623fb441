/*
 * metrics_server.c
 *      GET /metrics over HTTP on a thread of its own, with h2o (the library
 *      commerce-http is built on), so that a scrape never waits for a batch
 *      and a batch never waits for a scrape.
 */
#include "metrics.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "h2o_includes.h"

static h2o_globalconf_t globalconf;
static h2o_context_t context;
static h2o_accept_ctx_t accept_ctx;

static int
on_req(h2o_handler_t *self, h2o_req_t *req)
{
	char *body;
	size_t len = 0;

	(void) self;
	if (!h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/metrics"))) {
		req->res.status = 404;
		req->res.reason = "Not Found";
		h2o_send_inline(req, H2O_STRLIT("not found: the relay serves /metrics only\n"));
		return 0;
	}
	if ((body = metrics_render(&len)) == NULL) {
		req->res.status = 503;
		req->res.reason = "Service Unavailable";
		h2o_send_inline(req, H2O_STRLIT("out of memory\n"));
		return 0;
	}
	/* h2o_send_inline copies into the request's pool */
	req->res.status = 200;
	req->res.reason = "OK";
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
				   H2O_STRLIT("text/plain; version=0.0.4"));
	h2o_send_inline(req, body, len);
	free(body);
	return 0;
}

static void
on_accept(h2o_socket_t *listener, const char *err)
{
	h2o_socket_t *sock;

	if (err != NULL)
		return;
	if ((sock = h2o_evloop_socket_accept(listener)) != NULL)
		h2o_accept(&accept_ctx, sock);
}

static void *
serve(void *arg)
{
	h2o_socket_t *listener = arg;

	h2o_socket_read_start(listener, on_accept);
	while (h2o_evloop_run(context.loop, INT32_MAX) == 0)
		;
	return NULL;
}

static int
open_listener(const char *host, unsigned short port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	.ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
	char service[8];
	int fd, one = 1, rc;

	snprintf(service, sizeof(service), "%u", port);
	if ((rc = getaddrinfo(host, service, &hints, &res)) != 0) {
		relay_log(RELAY_ERROR, "cannot resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
		relay_log(RELAY_ERROR, "cannot serve metrics on %s:%u: %s", host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

int
metrics_server_start(const char *host, unsigned short port)
{
	h2o_hostconf_t *hostconf;
	h2o_handler_t *handler;
	h2o_socket_t *listener;
	pthread_t thread;
	sigset_t all, old;
	int fd;

	if ((fd = open_listener(host, port)) < 0)
		return -1;
	h2o_config_init(&globalconf);
	globalconf.server_name = h2o_iovec_init(H2O_STRLIT("commerce-relay"));
	hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	handler = h2o_create_handler(h2o_config_register_path(hostconf, "/", 0), sizeof(*handler));
	handler->on_req = on_req;
	h2o_context_init(&context, h2o_evloop_create(), &globalconf);
	accept_ctx.ctx = &context;
	accept_ctx.hosts = globalconf.hosts;
	listener = h2o_evloop_socket_create(context.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
	/* SIGTERM and SIGINT are the working thread's: the new thread blocks them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	{
		int rc = pthread_create(&thread, NULL, serve, listener);

		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0) {
			relay_log(RELAY_ERROR, "cannot start the metrics thread: %s", strerror(rc));
			return -1;
		}
	}
	pthread_detach(thread);
	relay_log(RELAY_LOG, "metrics on http://%s:%u/metrics", host, port);
	return 0;
}
