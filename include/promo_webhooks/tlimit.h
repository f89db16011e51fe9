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
 * The base is measured in a round at the floor: a new target's first round
 * (then it goes on at TLIMIT_START), and again every TLIMIT_BASE_KEEP_US
 * (then it goes back to the limit it had). Without that, a base measured under load
 * would let the limit creep up; with it, a target that became slower for
 * good is measured against its new self.
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

struct tlimit {
	size_t limit;          /* requests in flight allowed now */
	size_t min, max;
	/* The current round: answers to requests started since round_start_us. */
	int64_t round_start_us;
	size_t round_n;
	int64_t round_sum_us;
	int round_full;        /* requests waited for a slot in it */
	int round_timeout;     /* an attempt in it timed out */
	int64_t base_us;       /* the lowest round mean, 0 before the first */
	int64_t base_at_us;    /* when the base was measured */
	size_t probe_return;   /* != 0: this round measures the base at the
				* floor, then the limit goes back to this */
};

/* A new target: a first round at TLIMIT_MIN, then TLIMIT_START (both
 * within max). */
void tlimit_init(struct tlimit *l, size_t max, int64_t now_us);
/*
 * One answer (or timeout) to a request started at started_us; waiting:
 * requests of the target are waiting for a slot. Returns 1 when the limit
 * changed.
 */
int tlimit_answer(struct tlimit *l, int64_t started_us, int64_t now_us, int timed_out,
		  int waiting);

#endif
