/*
 * bench-periods: what one scheduler tick costs (issue 4: "10,000
 * promotions spread over a day: the tick stays cheap"). Not part of CTest.
 *
 * Usage:
 *   REDIS_URL=redis://127.0.0.1:PORT/0 bench-periods [PROMOTIONS [HOOKS [TICKS]]]
 *       defaults 10000 100 120
 *
 * Uses database 15 of that Redis and EMPTIES IT first. Through the real
 * store (store.c, its Lua), on simulated time (a tick is a second of
 * "now", run back to back):
 *   1. PROMOTIONS promotions of one company (the worst case: every hook
 *      looks at the same date index), starts spread evenly over the next
 *      day, each ending an hour after it starts;
 *   2. HOOKS period webhooks of that company, Starting and Ending in turn,
 *      periods 1 min, 15 min, 1 h, 6 h and 1 day in turn;
 *   3. the first passes, which claim every occurrence already due (whole
 *      windows, at most 1000 claims a pass) until one claims nothing;
 *   4. TICKS steady ticks, one simulated second apart;
 *   5. the same ticks with 10 promotions' dates moved into open windows
 *      before each (the {pw}:promo-fresh path);
 *   6. for comparison, ticks where every hook looks at its whole window
 *      (what a scan without the per-hook marks would cost every tick).
 * Prints the time per pass as the client sees it (loopback round trip
 * included) and the occurrences claimed.
 */
#include "promo_webhooks/event.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/store_outcomes.h"
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/webhook.h"
#include "itest.h"

#include <signal.h>

#define BENCH_DB 15
#define MINUTE 60000LL
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define COMPANY "bench"
#define MOVES_PER_TICK 10

static struct event_base *base;
static struct store *st;
static redisContext *raw;

struct wres {
	int done;
	enum store_status status;
};

static void on_write(void *arg, enum store_status status, int64_t version)
{
	struct wres *r = arg;

	r->done++;
	if (status != STORE_OK)
		r->status = status;
}

struct sres {
	int done;
	enum store_status status;
	size_t claimed;
	int skipped;
};

static void on_scan(void *arg, enum store_status status, size_t claimed,
		    int skipped)
{
	struct sres *r = arg;

	r->done = 1;
	r->status = status;
	r->claimed = claimed;
	r->skipped = skipped;
}

static int ready(void *arg)
{
	return store_is_ready(st);
}

struct count_wait {
	struct wres *r;
	int want;
};

static int all_written(void *arg)
{
	struct count_wait *w = arg;

	return w->r->done >= w->want;
}

static void die(const char *what)
{
	fprintf(stderr, "bench-periods: %s\n", what);
	exit(1);
}

/* One pass at now, the lock cleared first (one replica, back to back):
 * the claims; *ms gets the time it took. */
static size_t pass(int64_t now, const struct store_period_hook *hooks,
		   size_t n, double *ms)
{
	struct sres r;
	char text[40];
	int64_t t0;

	itest_cmd_ok(raw, "DEL {pw}:scheduler:lock");
	event_format_time(now, text, sizeof(text));
	memset(&r, 0, sizeof(r));
	t0 = itest_now_ms();
	if (store_period_scan(st, now, text, 1000, hooks, n, on_scan, &r) < 0)
		die("store_period_scan refused");
	if (itest_run_until(base, itest_is_done, &r, 60000) < 0)
		die("a pass did not complete");
	*ms = (double)(itest_now_ms() - t0);
	if (r.status != STORE_OK || r.skipped)
		die("a pass failed");
	return r.claimed;
}

/* Applies one promotion (start, end = start + 1 h) without waiting. */
static void apply(const char *id, int64_t time, int64_t start, struct wres *r)
{
	struct store_promotion pr;
	char data[128];

	snprintf(data, sizeof(data), "{\"promotionId\":\"%s\",\"name\":\"Promotion %s\"}",
		 id, id);
	memset(&pr, 0, sizeof(pr));
	pr.company_id = COMPANY;
	pr.promotion_id = id;
	pr.event_time_ms = time;
	pr.data = data;
	pr.data_len = strlen(data);
	pr.has_start = 1;
	pr.start_ms = start;
	pr.has_end = 1;
	pr.end_ms = start + HOUR;
	if (store_promotion_apply(st, &pr, on_write, r) < 0)
		die("store_promotion_apply refused");
}

struct stats {
	double sum, max;
	size_t claimed;
	int n;
};

static void stats_add(struct stats *s, double ms, size_t claimed)
{
	s->sum += ms;
	if (ms > s->max)
		s->max = ms;
	s->claimed += claimed;
	s->n++;
}

static void stats_print(const char *what, const struct stats *s)
{
	printf("%-44s %6.2f ms per tick (max %6.2f), %zu claimed in %d ticks\n",
	       what, s->n ? s->sum / s->n : 0.0, s->max, s->claimed, s->n);
}

int main(int argc, char **argv)
{
	static const int64_t periods[5][2] = {
		{ PERIOD_MINUTES, 1 }, { PERIOD_MINUTES, 15 }, { PERIOD_HOURS, 1 },
		{ PERIOD_HOURS, 6 }, { PERIOD_DAYS, 1 },
	};
	long n_promos = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
	long n_hooks = argc > 2 ? strtol(argv[2], NULL, 10) : 100;
	long ticks = argc > 3 ? strtol(argv[3], NULL, 10) : 120;
	struct store_period_hook *hooks;
	struct stats steady, moving, whole, first;
	char (*ids)[33];
	struct count_wait cw;
	struct config cfg;
	struct wres w;
	int64_t now0, t0, spacing, event_time = 2;
	char err[256], id[32];
	double ms;
	size_t claimed;
	long i, k;

	if (n_promos < 1 || n_hooks < 1 || ticks < 1)
		die("usage: bench-periods [PROMOTIONS [HOOKS [TICKS]]]");
	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	itest_config(&cfg, BENCH_DB);
	base = event_base_new();
	if (!base)
		die("event_base_new failed");
	raw = itest_redis(&cfg);
	itest_cmd_ok(raw, "FLUSHDB");
	st = store_new(base, &cfg, err, sizeof(err));
	if (!st)
		die(err);
	if (itest_run_until(base, ready, NULL, 5000) < 0)
		die("redis not ready");

	/* 1. the promotions */
	now0 = 1767225600000LL; /* 2026-01-01T00:00:00Z */
	spacing = DAY / n_promos;
	memset(&w, 0, sizeof(w));
	t0 = itest_now_ms();
	for (i = 0; i < n_promos; i++) {
		snprintf(id, sizeof(id), "P%06ld", i);
		apply(id, 1, now0 + 1 + i * spacing, &w);
	}
	cw.r = &w;
	cw.want = (int)n_promos;
	if (itest_run_until(base, all_written, &cw, 120000) < 0 || w.status != STORE_OK)
		die("storing the promotions failed");
	printf("%ld promotions over a day stored in %lld ms\n", n_promos,
	       (long long)(itest_now_ms() - t0));

	/* 2. the hooks */
	hooks = calloc((size_t)n_hooks, sizeof(*hooks));
	ids = calloc((size_t)n_hooks, sizeof(*ids));
	if (!hooks || !ids)
		die("out of memory");
	for (i = 0; i < n_hooks; i++) {
		const int64_t *p = periods[(i / 2) % 5];

		snprintf(ids[i], sizeof(ids[i]), "%032lx", (unsigned long)i + 1);
		hooks[i].webhook_id = ids[i];
		hooks[i].company_id = COMPANY;
		hooks[i].type = i % 2 ? EVENT_PROMOTION_ENDING_IN_PERIOD
				      : EVENT_PROMOTION_STARTING_IN_PERIOD;
		hooks[i].period = (enum period_unit)p[0];
		hooks[i].period_value = p[1];
		hooks[i].period_ms = p[1] * period_unit_minutes(hooks[i].period) * MINUTE;
	}

	/* 3. the first passes: everything already due */
	memset(&first, 0, sizeof(first));
	do {
		claimed = pass(now0, hooks, (size_t)n_hooks, &ms);
		stats_add(&first, ms, claimed);
	} while (claimed > 0 && first.n < 10000);
	printf("first passes (whole windows, <= 1000 claims each): %zu occurrences "
	       "due at once claimed in %d passes, %.0f ms in all, max %.1f ms a pass\n",
	       first.claimed, first.n - 1, first.sum, first.max);

	/* 4. steady ticks */
	memset(&steady, 0, sizeof(steady));
	for (k = 1; k <= ticks; k++) {
		claimed = pass(now0 + k * 1000, hooks, (size_t)n_hooks, &ms);
		stats_add(&steady, ms, claimed);
	}

	/* 5. with dates moving into open windows */
	memset(&moving, 0, sizeof(moving));
	for (k = ticks + 1; k <= 2 * ticks; k++) {
		int64_t now = now0 + k * 1000;

		memset(&w, 0, sizeof(w));
		for (i = 0; i < MOVES_PER_TICK; i++) {
			snprintf(id, sizeof(id), "P%06ld", (k * MOVES_PER_TICK + i) % n_promos);
			/* spread over the next 30 minutes */
			apply(id, event_time, now + 1 + ((k * 7919 + i * 104729) % (30 * MINUTE)), &w);
		}
		event_time++;
		cw.want = MOVES_PER_TICK;
		if (itest_run_until(base, all_written, &cw, 10000) < 0 || w.status != STORE_OK)
			die("moving dates failed");
		claimed = pass(now, hooks, (size_t)n_hooks, &ms);
		stats_add(&moving, ms, claimed);
	}

	/* 6. every hook over its whole window each tick (marks dropped) */
	memset(&whole, 0, sizeof(whole));
	for (k = 2 * ticks + 1; k <= 2 * ticks + 10; k++) {
		for (i = 0; i < n_hooks; i++)
			itest_cmd_ok(raw, "DEL {pw}:sched:%s:%s", ids[i],
				     i % 2 ? "end" : "start");
		claimed = pass(now0 + k * 1000, hooks, (size_t)n_hooks, &ms);
		stats_add(&whole, ms, claimed);
	}

	printf("%ld promotions over a day, %ld period webhooks of their company:\n",
	       n_promos, n_hooks);
	stats_print("  steady tick", &steady);
	stats_print("  tick with 10 dates moved into windows", &moving);
	stats_print("  (whole windows every tick, for comparison)", &whole);

	store_free(st);
	redisFree(raw);
	event_base_free(base);
	config_release(&cfg);
	free(hooks);
	free(ids);
	return 0;
}
