/*
 * worker.c
 *      The per-thread event loop: accepting under the connection cap (and
 *      answering 503 beyond it), the 100 ms tick that notices SIGTERM, and
 *      draining before the thread ends.
 */
#include "worker.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "counter.h"
#include "peer_limit.h"

#define LISTEN_BACKLOG 65535	/* the kernel caps it at net.core.somaxconn */
#define ACCEPT_BURST 64
#define TICK_MS 100

worker_t *workers;
int worker_count;
volatile int commerce_stop_requested;

/*
 * Open client connections of all threads, held against --max-connections.
 * One count for the process: SO_REUSEPORT spreads connections over the
 * listeners by a hash of the addresses, not evenly, so a per-thread share of
 * the cap would refuse on one thread while another still had room.
 */
static int open_total;

/*
 * The answer to a connection beyond the cap.  Accepting and answering at once
 * tells the client to come back (Retry-After) instead of leaving it in the
 * listen backlog with no answer until some connection closes.  It is static,
 * so nothing is allocated or formatted for a refusal.
 */
#define CAP_BODY "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"too many open connections, retry later\"}}"
#define CAP_BODY_LEN "83"
static const char cap_response[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Server: commerce-http\r\n"
	"Content-Type: application/json\r\n"
	"Retry-After: 1\r\n"
	"Connection: close\r\n"
	"Content-Length: " CAP_BODY_LEN "\r\n"
	"\r\n"
	CAP_BODY;
_Static_assert(sizeof(CAP_BODY) - 1 == 83, "CAP_BODY_LEN must be the length of CAP_BODY");

static int listen_fds[256];

/*
 * SO_REUSEPORT would let a second daemon silently share the port with a
 * first one; a plain bind first tells "address in use" apart.
 */
static int
port_is_free(const struct addrinfo *ai)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	int ok;

	if (fd < 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno != EADDRINUSE;
	close(fd);
	return ok;
}

static int
open_listener(int first)
{
	struct addrinfo hints, *res;
	char port[8];
	int fd, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", commerce_config.listen_port);
	if ((rc = getaddrinfo(commerce_config.listen_host, port, &hints, &res)) != 0) {
		commerce_log(COMMERCE_ERROR, "cannot resolve %s: %s", commerce_config.listen_host, gai_strerror(rc));
		return -1;
	}
	if (first && !port_is_free(res)) {
		commerce_log(COMMERCE_ERROR, "cannot listen on %s:%u: address already in use", commerce_config.listen_host,
					 commerce_config.listen_port);
		freeaddrinfo(res);
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
		bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
		listen(fd, LISTEN_BACKLOG) != 0) {
		commerce_log(COMMERCE_ERROR, "cannot listen on %s:%u: %s", commerce_config.listen_host,
				commerce_config.listen_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void on_accept(h2o_socket_t *listener, const char *err);

/* What a client connection's close must give back. */
typedef struct client_slot {
	worker_t *worker;
	int peer;					/* peer_limit_acquire's entry */
} client_slot_t;

static void
on_client_close(void *data)
{
	client_slot_t *slot = data;

	COUNTER_ADD(slot->worker->open_connections, -1);
	peer_limit_release(slot->peer);
	__atomic_sub_fetch(&open_total, 1, __ATOMIC_RELAXED);
	free(slot);
}

/*
 * One non-blocking send of cap_response into the new socket's empty send
 * buffer (it fits; if it ever did not, the client gets a cut answer, never a
 * stalled loop), then close.  A request that already arrived is read first
 * and dropped: closing a socket with unread bytes sends a reset, which may
 * make the client discard the answer.  The connection was counted in
 * open_total already; its count is given back here.
 */
static void
refuse_connection(worker_t *w, h2o_socket_t *sock, refused_connection_t reason)
{
	int fd = h2o_socket_get_fd(sock);
	char scratch[4096];

	if (send(fd, cap_response, sizeof(cap_response) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		commerce_log(COMMERCE_WARNING, "connection cap: cannot send the 503: %s", strerror(errno));
	else if (recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) < 0) {
		/* EAGAIN: nothing sent yet; anything else: the client is gone already */
	}
	metrics_count_refused_connection(&w->metrics, reason);
	h2o_socket_close(sock);
	__atomic_sub_fetch(&open_total, 1, __ATOMIC_RELAXED);
}

static void
on_accept(h2o_socket_t *listener, const char *err)
{
	worker_t *w = listener->data;

	if (err != NULL)
		return;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		h2o_socket_t *sock;
		client_slot_t *slot;
		struct sockaddr_storage peer;

		if ((sock = h2o_evloop_socket_accept(listener)) == NULL)
			return;
		if (__atomic_add_fetch(&open_total, 1, __ATOMIC_RELAXED) > commerce_config.max_connections) {
			refuse_connection(w, sock, REFUSED_CONNECTION_CAP);
			continue;
		}
		if ((slot = malloc(sizeof(*slot))) == NULL) {
			commerce_log(COMMERCE_WARNING, "connection refused: out of memory");
			refuse_connection(w, sock, REFUSED_CONNECTION_CAP);
			continue;
		}
		slot->peer = h2o_socket_getpeername(sock, (struct sockaddr *) &peer) != 0
			? peer_limit_acquire((struct sockaddr *) &peer) : PEER_UNTRACKED;
		if (slot->peer == PEER_REFUSED) {
			free(slot);
			refuse_connection(w, sock, REFUSED_ADDRESS_CAP);
			continue;
		}
		slot->worker = w;
		COUNTER_BUMP(w->open_connections);
		sock->on_close.cb = on_client_close;
		sock->on_close.data = slot;
		h2o_accept(&w->accept_ctx, sock);
	}
}

static void
on_tick(h2o_timeout_entry_t *entry)
{
	worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, tick, entry);

	if (w->access_log.len > 0)
		access_log_flush(&w->access_log);
	if (commerce_stop_requested && !w->stopping) {
		w->stopping = 1;
		w->stop_deadline = h2o_now(w->loop) + (uint64_t) commerce_config.drain_ms;
		if (w->listener != NULL) {
			h2o_socket_read_stop(w->listener);
			h2o_socket_close(w->listener);
			w->listener = NULL;
		}
		h2o_context_request_shutdown(&w->ctx);
	}
	if (!w->stopping)
		replica_tick(&w->replica);
	h2o_timeout_link(w->loop, &w->tick_timeout, &w->tick);
}

static int
worker_drained(worker_t *w)
{
	return w->calls_in_flight == 0 || h2o_now(w->loop) >= w->stop_deadline;
}

static pthread_mutex_t drained_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drained_cond = PTHREAD_COND_INITIALIZER;
static int drained_workers;

/*
 * A drained worker parks instead of returning: the process exits from main()
 * while h2o's per-thread allocation caches are still reachable, rather than
 * tearing each loop down piecemeal with clients possibly still connected.
 */
static void *
worker_main(void *arg)
{
	worker_t *w = arg;
	uint64_t linger_until = 0;

	for (;;) {
		h2o_evloop_run(w->loop, INT32_MAX);
		if (linger_until != 0 && h2o_now(w->loop) >= linger_until)
			break;
		/* let the last responses leave the socket buffers */
		if (w->stopping && linger_until == 0 && worker_drained(w))
			linger_until = h2o_now(w->loop) + 2 * TICK_MS;
	}
	pthread_mutex_lock(&drained_lock);
	drained_workers++;
	pthread_cond_broadcast(&drained_cond);
	for (;;)
		pthread_cond_wait(&drained_cond, &drained_lock);
	return NULL;
}

static void
worker_init(worker_t *w, int index, h2o_globalconf_t *globalconf, int listen_fd)
{
	w->index = index;
	w->loop = h2o_evloop_create();
	h2o_context_init(&w->ctx, w->loop, globalconf);
	w->accept_ctx.ctx = &w->ctx;
	w->accept_ctx.hosts = globalconf->hosts;
	db_pool_init(&w->db, index, w->loop, commerce_config.conninfo, commerce_config.pool_size,
				 commerce_config.pipeline_depth, commerce_config.queue_size, commerce_config.deadline_ms);
	if (commerce_config.operator_conninfo != NULL)
		db_pool_init(&w->operator_db, index, w->loop, commerce_config.operator_conninfo,
					 commerce_config.operator_pool_size, commerce_config.pipeline_depth,
					 commerce_config.queue_size, commerce_config.deadline_ms);
	replica_init(&w->replica, index, w->loop, &w->db);
	w->listener = h2o_evloop_socket_create(w->loop, listen_fd, H2O_SOCKET_FLAG_DONT_READ);
	w->listener->data = w;
	h2o_socket_read_start(w->listener, on_accept);
	h2o_timeout_init(w->loop, &w->tick_timeout, TICK_MS);
	w->tick.cb = on_tick;
	h2o_timeout_link(w->loop, &w->tick_timeout, &w->tick);
}

int
workers_start(h2o_globalconf_t *globalconf)
{
	worker_count = commerce_config.threads;
	workers = calloc((size_t) worker_count, sizeof(worker_t));
	if (workers == NULL ||
		peer_limit_init(commerce_config.max_connections_per_address, commerce_config.max_connections) != 0) {
		commerce_log(COMMERCE_ERROR, "out of memory at start");
		return -1;
	}
	for (int i = 0; i < worker_count; i++)
		if ((listen_fds[i] = open_listener(i == 0)) < 0)
			return -1;
	/* all set up before any thread runs, so the metrics scrape never sees half a worker */
	for (int i = 0; i < worker_count; i++)
		worker_init(&workers[i], i, globalconf, listen_fds[i]);
	for (int i = 0; i < worker_count; i++)
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
			return -1;
	return 0;
}

void
workers_join(void)
{
	pthread_mutex_lock(&drained_lock);
	while (drained_workers < worker_count)
		pthread_cond_wait(&drained_cond, &drained_lock);
	pthread_mutex_unlock(&drained_lock);
}
