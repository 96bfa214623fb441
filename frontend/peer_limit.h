/*
 * peer_limit.h
 *      --max-connections-per-address: how many connections one client
 *      address may hold open at once, over all threads.
 *
 * One table for the process, behind a mutex: an accept takes it once and a
 * close once, far from the request path's cost.  Its entries live in an
 * array of --max-connections nodes allocated at start (there can never be
 * more distinct addresses open than connections), so accepting never
 * allocates and a full table cannot happen.
 */
#ifndef COMMERCE_HTTP_PEER_LIMIT_H
#define COMMERCE_HTTP_PEER_LIMIT_H

#include <sys/socket.h>

/* 0 on success; -1 if the table cannot be allocated.  per_address 0: no limit. */
int peer_limit_init(int per_address, int max_connections);

/*
 * Counts one more connection from sa and returns what peer_limit_release
 * takes when the connection closes: an entry (>= 0), or PEER_UNTRACKED when
 * the limit is off or sa is not an IP address.  PEER_REFUSED (nothing
 * counted) if that address holds --max-connections-per-address already.
 */
#define PEER_UNTRACKED (-1)
#define PEER_REFUSED (-2)
int peer_limit_acquire(const struct sockaddr *sa);
void peer_limit_release(int entry);

#endif
