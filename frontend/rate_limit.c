/*
 * rate_limit.c
 *      The token buckets of rate_limit.h in one fixed table.
 *
 * The table has RATE_SLOTS slots and never grows: a bucket lives in one of
 * RATE_PROBE consecutive slots after its hash; when all of them belong to
 * other users, the one idle longest is taken over, and its user starts again
 * with a full bucket.  So memory is bounded whatever the number of users,
 * and the limit holds exactly for up to about RATE_SLOTS users active at
 * once; beyond that it errs on the side of letting requests through.
 * A mutex per stripe of slots keeps threads apart (a request holds one for
 * a few dozen instructions).
 */
#include "rate_limit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"

#define RATE_SLOTS 65536		/* a power of two */
#define RATE_PROBE 8			/* slots looked at per bucket; divides RATE_STRIPE */
#define RATE_STRIPE 1024		/* slots per mutex */

typedef struct bucket {
	int64_t user_id;			/* 0: free */
	uint8_t cls;
	double tokens;
	uint64_t last_us;			/* last refill */
} bucket_t;

static bucket_t *slots;
static pthread_mutex_t stripes[RATE_SLOTS / RATE_STRIPE];

void
rate_limit_init(void)
{
	slots = calloc(RATE_SLOTS, sizeof(*slots));
	if (slots == NULL) {
		fprintf(stderr, "commerce-http: out of memory for the rate-limit table\n");
		exit(2);
	}
	for (size_t i = 0; i < sizeof(stripes) / sizeof(stripes[0]); i++)
		pthread_mutex_init(&stripes[i], NULL);
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* splitmix64's finaliser: user ids are sequential, their slots must not be */
static uint64_t
mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int
rate_limit_take(int64_t user_id, rate_class_t cls)
{
	int rate = cls == RATE_CLASS_READ ? commerce_config.rate_limit_reads : commerce_config.rate_limit_writes;
	double capacity = 2.0 * rate;
	/* RATE_PROBE slots in a row, never crossing a stripe */
	size_t first = (size_t) (mix((uint64_t) user_id * RATE_CLASS__COUNT + cls) & (RATE_SLOTS - 1)) & ~(size_t) (RATE_PROBE - 1);
	pthread_mutex_t *lock = &stripes[first / RATE_STRIPE];
	uint64_t now = now_us();
	bucket_t *b = NULL, *oldest = NULL;
	int wait_s = 0;

	if (rate <= 0)
		return 0;
	pthread_mutex_lock(lock);
	for (size_t i = first; i < first + RATE_PROBE; i++) {
		if (slots[i].user_id == user_id && slots[i].cls == cls) {
			b = &slots[i];
			break;
		}
		if (oldest == NULL || slots[i].last_us < oldest->last_us)
			oldest = &slots[i];	/* a free slot has last_us 0: the oldest */
	}
	if (b == NULL) {
		b = oldest;
		*b = (bucket_t) {.user_id = user_id, .cls = (uint8_t) cls, .tokens = capacity, .last_us = now};
	}
	b->tokens += (double) (now - b->last_us) / 1e6 * rate;
	if (b->tokens > capacity)
		b->tokens = capacity;
	b->last_us = now;
	if (b->tokens >= 1.0)
		b->tokens -= 1.0;
	else
		wait_s = 1 + (int) ((1.0 - b->tokens) / rate);
	pthread_mutex_unlock(lock);
	return wait_s;
}
