/*
 * tlimit: the adaptive limit of one delivery target's requests in flight
 * (pure: no I/O, no clock; the caller passes the times).
 *
 * A fast target answers no sooner with 256 requests in flight than with 32:
 * the answers only wait longer, in the target or in the service's own loop,
 * and every extra connection costs CPU in curl, the loop and the kernel. A
 * slow one (50 ms answers) needs thousands in flight to be delivered to at
 * speed. So the limit adapts, in rounds of at least `limit` answers and
 * TLIMIT_ROUND_US to requests started in the round (a round measures the
 * limit it ran under, over many loop passes: a single pass that rendered a
 * batch of events would otherwise decide), against the target's base answer
 * time (its lowest round mean):
 *   - mean above twice the base plus TLIMIT_PASS_US: more in flight only
 *     made answers wait: halve. The pass allowance: while the loop works
 *     through a burst of events, every answer waits for the pass that
 *     reads it, whatever the limit; without it a fast target (base 0.45 ms)
 *     was halved to the floor in every burst, and its queue drained at 16
 *     in flight (the latency benchmark's worst 100 ms windows);
 *   - else, requests waited for a slot during the round, none timed out,
 *     and the mean is within 1.5 times the base (plus the slack): by
 *     Little's law the doubled limit brings at least a third more answers
 *     per second: double;
 *   - else keep. A doubling that only doubled the answer time (the
 *     service's own CPU, or the target, is the bottleneck) is thus not
 *     repeated, and not undone either.
 * Those rules judge by answer times, and answer times cannot tell a busy
 * loop from a busy target; answer rates can. So before them, a queue that
 * grows: when the target's queue grew during a round by more than an
 * eighth (TLIMIT_GROW_DIV) of the round's answers (requests come in faster
 * than they are answered) and none timed out, the answer-time rules are
 * not applied; the limit doubles (below the cap), and the round after
 * compares its answers per second with the round before: less than an
 * eighth more, and the doubling is undone and not tried again for
 * TLIMIT_BASE_KEEP_US (the target, or the service's CPU, is the
 * bottleneck: more in flight only waits); more, and the limit that paid
 * stays until the queue has been empty once. Without this, a loop busy
 * with a burst made every answer slower than 1.5 times the base, and those
 * at 32 in flight slower than twice the base plus the pass: the limit
 * went down to 16 and stayed, and a queue of 2,112 drained at a few hundred
 * a second above the arrivals (latency benchmark, README "Performance";
 * unit_tlimit test_growing_queue_drains).
 * The base is measured in a round at the floor: a new target's first round
 * (then it goes on at TLIMIT_START), and again every TLIMIT_BASE_KEEP_US
 * (then it goes back to the limit it had), put off while a queue grows or
 * drains at a limit that paid.
 * Without that, a base measured under load would let the limit creep up;
 * with it, a target that became slower for good is measured against its
 * new self.
 */
#ifndef PROMO_WEBHOOKS_TLIMIT_H
#define PROMO_WEBHOOKS_TLIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Where a target starts, and the floor (both capped by the maximum). */
#define TLIMIT_START 32
#define TLIMIT_MIN 16
/* How long a base answer time counts before it is measured again. */
#define TLIMIT_BASE_KEEP_US 10000000
/* A round lasts at least this long. */
#define TLIMIT_ROUND_US 50000
/* Answer times this close are the same (timer precision, an idle pass). */
#define TLIMIT_SLACK_US 250
/* What a pass of the loop under load (a batch of events taken in,
 * rendered and submitted, then the answers read) may hold an answer back:
 * only a mean slower than twice the base by more than this halves. */
#define TLIMIT_PASS_US 1000
/* A queue that grew by more than 1/TLIMIT_GROW_DIV of a round's answers
 * grows; a doubling that brought less than 1/TLIMIT_GROW_DIV more answers
 * per second did not pay. */
#define TLIMIT_GROW_DIV 8

struct tlimit {
	size_t limit;          /* requests in flight allowed now */
	size_t min, max;
	/* The current round: answers to requests started since round_start_us. */
	int64_t round_start_us;
	size_t round_n;
	int64_t round_sum_us;
	int round_full;        /* requests waited for a slot in it */
	int round_timeout;     /* an attempt in it timed out */
	size_t round_queued;   /* the target's queue when it began */
	size_t round_all;      /* answers in it, to requests started any time */
	int64_t base_us;       /* the lowest round mean, 0 before the first */
	int64_t base_at_us;    /* when the base was measured */
	size_t probe_return;   /* != 0: this round measures the base at the
				* floor, then the limit goes back to this */
	int64_t grow_rate;     /* != 0: the limit was doubled for a growing
				* queue; answers per second of the round before */
	size_t grow_block;     /* != 0: a doubling to this limit did not pay;
				* none to it or above for TLIMIT_BASE_KEEP_US,
				* or up to the next base round */
	int64_t grow_block_at_us;
	int grown;             /* a doubling for a growing queue paid, and
				* the queue has not been empty since */
};

/* A new target: a first round at TLIMIT_MIN, then TLIMIT_START (both
 * within max). */
void tlimit_init(struct tlimit *l, size_t max, int64_t now_us);
/*
 * One answer (or timeout) to a request started at started_us; queued: the
 * target's requests waiting for a slot now. Returns 1 when the limit
 * changed.
 */
int tlimit_answer(struct tlimit *l, int64_t started_us, int64_t now_us, int timed_out,
		  size_t queued);

#endif
