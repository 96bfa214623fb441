/*
 * peer_limit.c
 *      Open connections per client address, as chained hash buckets over a
 *      preallocated node array (see peer_limit.h).  Addresses are compared
 *      as 16 bytes: IPv4 in its IPv4-mapped IPv6 form, IPv6 as a whole
 *      address (a /64 is not grouped: say so if clients come from one).
 */
#include "peer_limit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct peer {
	unsigned char addr[16];
	int count;					/* open connections from addr; 0: on the free list */
	int next;					/* next in its bucket or on the free list, -1 ends */
} peer_t;

static pthread_mutex_t peer_lock = PTHREAD_MUTEX_INITIALIZER;
static int per_address_limit;	/* 0: off */
static peer_t *peers;
static int *buckets;
static unsigned int bucket_mask;
static int free_head;

int
peer_limit_init(int per_address, int max_connections)
{
	unsigned int n_buckets = 1;

	per_address_limit = per_address;
	if (per_address == 0)
		return 0;
	while (n_buckets < (unsigned int) max_connections)
		n_buckets <<= 1;
	peers = calloc((size_t) max_connections, sizeof(*peers));
	buckets = malloc(n_buckets * sizeof(*buckets));
	if (peers == NULL || buckets == NULL)
		return -1;
	for (unsigned int b = 0; b < n_buckets; b++)
		buckets[b] = -1;
	for (int i = 0; i < max_connections; i++)
		peers[i].next = i + 1 < max_connections ? i + 1 : -1;
	bucket_mask = n_buckets - 1;
	free_head = 0;
	return 0;
}

/* sa as 16 bytes; 0 if it is not an IP address */
static int
address_key(const struct sockaddr *sa, unsigned char key[16])
{
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
		return 1;
	}
	if (sa->sa_family == AF_INET) {
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *) sa)->sin_addr, 4);
		return 1;
	}
	return 0;
}

/* FNV-1a: the table is private and bounded, so any spread will do */
static unsigned int
bucket_of(const unsigned char key[16])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h & bucket_mask;
}

int
peer_limit_acquire(const struct sockaddr *sa)
{
	unsigned char key[16];
	unsigned int b;
	int i, result;

	if (per_address_limit == 0 || !address_key(sa, key))
		return PEER_UNTRACKED;
	b = bucket_of(key);
	pthread_mutex_lock(&peer_lock);
	for (i = buckets[b]; i >= 0 && memcmp(peers[i].addr, key, 16) != 0; i = peers[i].next)
		;
	if (i >= 0) {
		result = peers[i].count < per_address_limit ? (peers[i].count++, i) : PEER_REFUSED;
	} else if (free_head >= 0) {
		/* the caller's --max-connections check keeps a node free for every open connection */
		i = free_head;
		free_head = peers[i].next;
		memcpy(peers[i].addr, key, 16);
		peers[i].count = 1;
		peers[i].next = buckets[b];
		buckets[b] = i;
		result = i;
	} else {
		result = PEER_REFUSED;
	}
	pthread_mutex_unlock(&peer_lock);
	return result;
}

void
peer_limit_release(int entry)
{
	int *link;

	if (entry < 0)
		return;
	pthread_mutex_lock(&peer_lock);
	if (--peers[entry].count == 0) {
		for (link = &buckets[bucket_of(peers[entry].addr)]; *link != entry; link = &peers[*link].next)
			;
		*link = peers[entry].next;
		peers[entry].next = free_head;
		free_head = entry;
	}
	pthread_mutex_unlock(&peer_lock);
}
