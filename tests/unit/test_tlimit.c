/*
 * unit_tlimit: the adaptive per-target limit against simulated targets.
 *
 * The simulation keeps the target's queue full (requests always waiting)
 * and runs `limit` requests at a time: an answer takes answer_us(limit)
 * (the target's, or the service's, behaviour), so answers arrive at
 * limit / answer_us per microsecond (Little's law). Each answer is handed
 * to tlimit_answer with its start time; the limit it leaves is what the
 * next answers run under.
 */
#include "promo_webhooks/tlimit.h"
#include "testutil.h"

typedef int64_t answer_fn(size_t limit, int64_t now_us);

struct run {
	size_t max_limit;        /* highest limit seen (after settle_us) */
	size_t min_limit;        /* lowest limit seen (after settle_us) */
	double mean_limit;       /* time-weighted, after settle_us */
	size_t final_limit;
};

/* Runs a target for seconds of simulated time. */
static struct run simulate(struct tlimit *l, answer_fn *answer, int64_t start_us,
			   int64_t seconds, int64_t settle_us, int timed_out)
{
	struct run r = {0, (size_t)-1, 0, 0};
	int64_t now = start_us, end = start_us + seconds * 1000000;
	double weighted = 0, span = 0;

	while (now < end) {
		size_t limit = l->limit;
		int64_t d = answer(limit, now);
		/* The gap between answers at this limit. */
		int64_t gap = d / (int64_t)limit > 0 ? d / (int64_t)limit : 1;

		now += gap;
		tlimit_answer(l, now - d, now, timed_out, 1);
		if (now - start_us >= settle_us) {
			if (l->limit > r.max_limit)
				r.max_limit = l->limit;
			if (l->limit < r.min_limit)
				r.min_limit = l->limit;
			weighted += (double)limit * (double)gap;
			span += (double)gap;
		}
	}
	r.mean_limit = span > 0 ? weighted / span : 0;
	r.final_limit = l->limit;
	return r;
}

/* The service's own CPU is the bottleneck (20,000 answers/s whatever the
 * limit) and the target answers in 100 us: answer time = limit / rate. */
static int64_t cpu_bound(size_t limit, int64_t now_us)
{
	(void)now_us;
	return 100 + (int64_t)limit * 50;
}

/* A remote target answering in 50 ms, whatever the load. */
static int64_t slow_50ms(size_t limit, int64_t now_us)
{
	(void)limit;
	(void)now_us;
	return 50000;
}

/* A target with 8 workers taking 10 ms each: 800 answers/s at most. */
static int64_t eight_workers(size_t limit, int64_t now_us)
{
	(void)now_us;
	return limit <= 8 ? 10000 : (int64_t)limit * 10000 / 8;
}

/* Fast (1 ms) for 20 s, then 30 ms for good (a new region, say). */
static int64_t became_slow(size_t limit, int64_t now_us)
{
	(void)limit;
	return now_us < 20000000 ? 1000 : 30000;
}

/* Never answers: every request times out after 10 s. */
/* A fast target behind a loop that is idle for 5 s, then works through a
 * burst of events for 3 s, with the answer times the latency benchmark's
 * debug log showed (base 449 us at 16 in flight; in a burst 0.9 ms at 16
 * and 1.3 ms at 32): idle 450 us, busy 500 us + 25 us per request in
 * flight. In the burst 16 in flight carry 17,800
 * answers/s, 32 carry 24,600 and 64 30,500: the queue the burst left
 * drains only if the limit stays up. */
static int64_t burst_after_5s(size_t limit, int64_t now_us)
{
	if (now_us >= 5000000 && now_us < 8000000)
		return 500 + (int64_t)limit * 25;
	return 450;
}

static int64_t hangs(size_t limit, int64_t now_us)
{
	(void)limit;
	(void)now_us;
	return 10000000;
}

static void test_start(void)
{
	struct tlimit l;

	tlimit_init(&l, 256, 0);
	CHECK_INT(l.limit, TLIMIT_MIN);
	tlimit_init(&l, 8, 0);
	CHECK_INT(l.limit, 8);
	CHECK_INT(l.max, 8);
	/* The first round (answers of 1 ms): 16 answers are not enough
	 * before TLIMIT_ROUND_US has passed; then TLIMIT_START. */
	tlimit_init(&l, 256, 0);
	for (int i = 1; i <= TLIMIT_MIN; i++)
		tlimit_answer(&l, i * 10, 1000 + i * 10, 0, 1);
	CHECK_INT(l.limit, TLIMIT_MIN);
	CHECK_INT(l.round_n, TLIMIT_MIN);
	tlimit_answer(&l, TLIMIT_ROUND_US - 1000, TLIMIT_ROUND_US, 0, 1);
	CHECK_INT(l.limit, TLIMIT_START);
	CHECK_INT(l.base_us, 1000);
}

static void test_cpu_bound_stays_low(void)
{
	struct tlimit l;
	struct run r;

	/* A fast target behind a busy service: more in flight only makes the
	 * answers wait; the limit stays low (the old rule went to 256). */
	tlimit_init(&l, 256, 0);
	r = simulate(&l, cpu_bound, 0, 120, 2000000, 0);
	fprintf(stderr, "cpu-bound: limit %zu..%zu, mean %.1f\n", r.min_limit, r.max_limit,
		r.mean_limit);
	CHECK(r.max_limit <= 64);
	CHECK(r.mean_limit <= 40);
	CHECK(r.min_limit >= TLIMIT_MIN);
}

static void test_slow_target_grows(void)
{
	struct tlimit l;
	struct run r;

	/* 50 ms answers: the limit grows to the cap within a second or two
	 * and stays there, apart from one round at the floor every 10 s. */
	tlimit_init(&l, 2560, 0);
	r = simulate(&l, slow_50ms, 0, 60, 2000000, 0);
	fprintf(stderr, "50 ms: limit %zu..%zu, mean %.1f\n", r.min_limit, r.max_limit,
		r.mean_limit);
	CHECK_INT(r.max_limit, 2560);
	CHECK_INT(r.final_limit, 2560);
	CHECK(r.mean_limit >= 2560 * 0.9);
}

static void test_saturated_target(void)
{
	struct tlimit l;
	struct run r;

	/* 8 workers: anything above 16 only queues at the target. */
	tlimit_init(&l, 256, 0);
	r = simulate(&l, eight_workers, 0, 120, 1000000, 0);
	fprintf(stderr, "8 workers: limit %zu..%zu, mean %.1f\n", r.min_limit, r.max_limit,
		r.mean_limit);
	CHECK(r.max_limit <= 64);
	CHECK(r.mean_limit <= 40);
}

static void test_target_became_slow(void)
{
	struct tlimit l;
	struct run r;

	/* Measured against its new self within the base's 10 s: after that
	 * it gets the in-flight its 30 ms answers need. */
	tlimit_init(&l, 1024, 0);
	r = simulate(&l, became_slow, 0, 20, 0, 0);
	r = simulate(&l, became_slow, 20000000, 15, 13000000, 0);
	fprintf(stderr, "became slow: limit %zu..%zu at the end\n", r.min_limit, r.max_limit);
	CHECK_INT(r.final_limit, 1024);
}

static void test_burst_keeps_limit(void)
{
	struct tlimit l;
	struct run r;

	tlimit_init(&l, 256, 0);
	r = simulate(&l, burst_after_5s, 0, 5, 1000000, 0);
	fprintf(stderr, "burst, idle loop: limit %zu..%zu, mean %.1f\n", r.min_limit,
		r.max_limit, r.mean_limit);
	/* The burst: the loop's pass is not the target's answer time. */
	r = simulate(&l, burst_after_5s, 5000000, 3, 0, 0);
	fprintf(stderr, "burst, busy loop: limit %zu..%zu, mean %.1f\n", r.min_limit,
		r.max_limit, r.mean_limit);
	CHECK(r.min_limit >= 32);
	/* Coming in at 256 (the idle loop's answers did not slow with it),
	 * then down to what the busy loop can use. */
	CHECK(r.final_limit <= 64);
}

static void test_hung_target_never_grows(void)
{
	struct tlimit l;
	struct run r;

	tlimit_init(&l, 256, 0);
	r = simulate(&l, hangs, 0, 120, 0, 1);
	fprintf(stderr, "hung: limit %zu..%zu\n", r.min_limit, r.max_limit);
	CHECK(r.max_limit <= TLIMIT_START);
}

static void test_earlier_requests_do_not_count(void)
{
	struct tlimit l;

	tlimit_init(&l, 256, 1000000);
	/* Started before the round: ignored, however many. */
	for (int i = 0; i < 100; i++)
		CHECK_INT(tlimit_answer(&l, 999000, 1000000 + i, 0, 1), 0);
	CHECK_INT(l.round_n, 0);
	CHECK_INT(l.limit, TLIMIT_MIN);
}

int main(void)
{
	test_start();
	test_cpu_bound_stays_low();
	test_slow_target_grows();
	test_saturated_target();
	test_target_became_slow();
	test_burst_keeps_limit();
	test_hung_target_never_grows();
	test_earlier_requests_do_not_count();
	return TEST_DONE();
}
