/*
 * bench-periods: the period scheduler at scale (issue 14 part 1: "100,000
 * period webhooks across 10,000 companies and 1,000,000 promotions: the
 * tick cost, Redis memory and the delay between S - P and the delivery").
 * Not part of CTest; run by hand.
 *
 * Usage:
 *   REDIS_URL=redis://127.0.0.1:PORT/0 bench-periods [COMPANIES [HOOKS_PER_COMPANY
 *       [PROMOTIONS_PER_COMPANY [SECONDS]]]]
 *       defaults 10000 10 100 60
 *
 * Uses database 15 of that Redis and EMPTIES IT first (use a Redis of its
 * own: memory is read from INFO, for the whole server). On wall-clock
 * time, through the real store, registry and scheduler (scheduler.c, one
 * replica, a tick a second):
 *   1. the webhooks: per company half Starting, half Ending, periods
 *      1 min, 15 min, 1 h, 6 h, 1 day, 2 days, 7 days in turn;
 *   2. the promotions: starts spread over the next 30 days, each ending 1
 *      to 7 days after it starts, with a 200-byte data;
 *   3. the registry loads, the scheduler writes every company's hooks and
 *      claims what is already due (every window already open);
 *   4. SECONDS of steady ticks: Redis time per tick (INFO commandstats,
 *      the scripts' own time), the scheduler's pass as it saw it, and for
 *      every occurrence claimed in this phase the delay from S - P to its
 *      claim (the retry id carries the claim's ms). The claim is queued as
 *      a retry due at once; the retry relay picks it up within its poll.
 * Prints Redis memory after each step (used_memory) and per tracked
 * promotion and per period webhook.
 */
#include "promo_webhooks/buf.h"
#include "promo_webhooks/clock.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/scheduler.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/webhook.h"
#include "itest.h"

#include <signal.h>

#define BENCH_DB 15
#define MINUTE 60000LL
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define IN_FLIGHT 20000 /* writes outstanding at once */

static struct event_base *base;
static struct store *st;
static redisContext *raw;
static long started, finished, failed;

static void die(const char *what)
{
	fprintf(stderr, "bench-periods: %s\n", what);
	exit(1);
}

static void on_write(void *arg, enum store_status status, int64_t version)
{
	(void)arg;
	(void)version;
	finished++;
	if (status != STORE_OK)
		failed++;
}

static int below(void *arg)
{
	return started - finished <= *(long *)arg;
}

/* Waits until at most `left` writes are outstanding. */
static void drain(long left)
{
	if (itest_run_until(base, below, &left, 600000) < 0 || failed)
		die("writes failed or did not complete");
}

static int ready(void *arg)
{
	(void)arg;
	return store_is_ready(st);
}

static long long info_field(const char *section, const char *field)
{
	redisReply *rr = itest_cmd(raw, "INFO %s", section);
	const char *p = rr->type == REDIS_REPLY_STRING ? strstr(rr->str, field) : NULL;
	long long v = p ? atoll(p + strlen(field)) : -1;

	freeReplyObject(rr);
	return v;
}

/* Microseconds Redis spent in EVALSHA (the scripts) so far. */
static long long script_usec(void)
{
	redisReply *rr = itest_cmd(raw, "INFO commandstats");
	const char *p = rr->type == REDIS_REPLY_STRING ? strstr(rr->str, "cmdstat_evalsha:") : NULL;
	long long v = 0;

	if (p && (p = strstr(p, "usec=")))
		v = atoll(p + 5);
	freeReplyObject(rr);
	return v;
}

static long long mem(void)
{
	return info_field("memory", "used_memory:");
}

/* MEMORY USAGE (exact) of every key matching pattern. */
static long long keys_memory(const char *pattern)
{
	long long total = 0;
	char cursor[32] = "0";

	do {
		redisReply *rr = itest_cmd(raw, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
		size_t i;

		if (rr->type != REDIS_REPLY_ARRAY || rr->elements != 2)
			die("SCAN answered unexpectedly");
		snprintf(cursor, sizeof(cursor), "%s", rr->element[0]->str);
		for (i = 0; i < rr->element[1]->elements; i++) {
			redisReply *m = itest_cmd(raw, "MEMORY USAGE %b SAMPLES 0",
						  rr->element[1]->element[i]->str,
						  rr->element[1]->element[i]->len);

			total += m->type == REDIS_REPLY_INTEGER ? m->integer : 0;
			freeReplyObject(m);
		}
		freeReplyObject(rr);
	} while (strcmp(cursor, "0") != 0);
	return total;
}

static const struct {
	const char *unit;
	int value;
	int64_t ms;
} periods[7] = {
	{ "Minutes", 1, MINUTE }, { "Minutes", 15, 15 * MINUTE }, { "Hours", 1, HOUR },
	{ "Hours", 6, 6 * HOUR }, { "Days", 1, DAY }, { "Days", 2, 2 * DAY },
	{ "Days", 7, 7 * DAY },
};

static void create(long c, long k)
{
	struct webhook_error err;
	struct webhook wh;
	char body[256], id[40], company[40];

	snprintf(company, sizeof(company), "company-%05ld", c);
	snprintf(id, sizeof(id), "%016lx%016lx", (unsigned long)c, (unsigned long)k);
	snprintf(body, sizeof(body),
		 "{\"event\":\"%s\",\"target\":\"https://hooks.example/%s\","
		 "\"notificationPeriod\":\"%s\",\"notificationPeriodValue\":%d}",
		 k % 2 ? "Promotion.EndingInPeriod" : "Promotion.StartingInPeriod", id,
		 periods[(k / 2) % 7].unit, periods[(k / 2) % 7].value);
	webhook_init(&wh);
	wh.id = strdup(id);
	wh.company_id = strdup(company);
	if (webhook_apply_json(&wh, WEBHOOK_CREATE, body, strlen(body), clock_wall_ms(),
			       NULL, &err) < 0)
		die("bad webhook");
	if (store_webhook_create(st, &wh, on_write, NULL) < 0)
		die("store_webhook_create refused");
	started++;
	webhook_release(&wh);
}

static uint64_t rnd = 88172645463325252ULL;

static uint64_t next_rand(void)
{
	rnd ^= rnd << 13;
	rnd ^= rnd >> 7;
	rnd ^= rnd << 17;
	return rnd;
}

static void promotion(long c, long x, int64_t now)
{
	struct store_promotion pr;
	char data[320], id[40], company[40];

	snprintf(company, sizeof(company), "company-%05ld", c);
	snprintf(id, sizeof(id), "promo-%06ld", x);
	snprintf(data, sizeof(data), "{\"promotionId\":\"%s\",\"name\":\"Promotion %s\","
		 "\"description\":\"%0150ld\"}", id, id, x);
	memset(&pr, 0, sizeof(pr));
	pr.company_id = company;
	pr.promotion_id = id;
	pr.event_time_ms = now;
	pr.data = data;
	pr.data_len = strlen(data);
	pr.has_start = 1;
	pr.start_ms = now + 1 + (int64_t)(next_rand() % (uint64_t)(30 * DAY));
	pr.has_end = 1;
	pr.end_ms = pr.start_ms + HOUR * (int64_t)(24 + next_rand() % (6 * 24));
	pr.now_ms = now;
	if (store_promotion_apply(st, &pr, on_write, NULL) < 0)
		die("store_promotion_apply refused");
	started++;
}

/* The scheduler's last pass, from its metrics (seconds), and its claims. */
static void sched_figures(struct scheduler *s, double *pass_s, long long *claimed)
{
	struct buf out;
	const char *p;

	buf_init(&out, BUF_DEFAULT_MAX);
	scheduler_metrics(s, &out);
	p = strstr(buf_str(&out), "\npromo_webhooks_scheduler_scan_seconds ");
	*pass_s = p ? atof(p + strlen("\npromo_webhooks_scheduler_scan_seconds ")) : -1;
	p = strstr(buf_str(&out), "\npromo_webhooks_period_occurrences_claimed_total ");
	*claimed = p ? atoll(p + strlen("\npromo_webhooks_period_occurrences_claimed_total ")) : -1;
	buf_release(&out);
}

static int loaded(void *arg)
{
	return registry_is_loaded(arg);
}

static int nothing_due(void *arg)
{
	redisReply *rr;
	int empty;

	(void)arg;
	rr = itest_cmd(raw, "ZRANGEBYSCORE {pw}:period-due -inf %lld LIMIT 0 1",
		       (long long)clock_wall_ms());
	empty = rr->elements == 0;
	freeReplyObject(rr);
	return empty;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static int64_t field_num(const char *json, const char *name)
{
	const char *p = strstr(json, name);

	if (!p)
		return -1;
	p += strlen(name);
	while (*p == '"' || *p == ':')
		p++;
	return atoll(p);
}

static int64_t period_ms_of(const char *json)
{
	int64_t v = field_num(json, "\"periodValue\"");

	if (strstr(json, "\"period\":\"Minutes\""))
		return v * MINUTE;
	if (strstr(json, "\"period\":\"Hours\""))
		return v * HOUR;
	return v * DAY;
}

/* Delays (ms) from S - P to the claim of every occurrence claimed at or
 * after since_ms. */
static void delays(int64_t since_ms)
{
	redisReply *rr = itest_cmd(raw, "HGETALL {pw}:retry-jobs");
	long long *d = calloc(rr->elements / 2 + 1, sizeof(*d));
	size_t i, n = 0;

	for (i = 0; d && i + 1 < rr->elements; i += 2) {
		const char *rid = rr->element[i]->str, *c1 = strchr(rid, ':');
		int64_t claim = c1 ? atoll(c1 + 1) : -1;
		const char *json = rr->element[i + 1]->str;
		int64_t s = field_num(json, "\"at\"");

		if (claim < since_ms || s < 0)
			continue;
		d[n++] = claim - (s - period_ms_of(json));
	}
	if (n) {
		qsort(d, n, sizeof(*d), cmp_ll);
		printf("  delay S - P to claim, %zu occurrences: p50 %lld ms, p99 %lld ms, "
		       "max %lld ms\n", n, d[n / 2], d[n * 99 / 100], d[n - 1]);
	} else {
		printf("  no occurrence became due during the steady phase\n");
	}
	free(d);
	freeReplyObject(rr);
}

int main(int argc, char **argv)
{
	long companies = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
	long per_company = argc > 2 ? strtol(argv[2], NULL, 10) : 10;
	long promos = argc > 3 ? strtol(argv[3], NULL, 10) : 100;
	long seconds = argc > 4 ? strtol(argv[4], NULL, 10) : 60;
	long long m0, m_hooks, m_promos, m_sync, usec0, claimed0, claimed1;
	struct scheduler *sched;
	struct registry *reg;
	struct config cfg;
	int64_t t0, now, steady0;
	char err[256];
	double pass_s, pass_sum = 0, pass_max = 0;
	long c, k, i;

	if (companies < 1 || per_company < 1 || promos < 1 || seconds < 1)
		die("usage: bench-periods [COMPANIES [HOOKS_PER_COMPANY [PROMOTIONS_PER_COMPANY [SECONDS]]]]");
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
	m0 = mem();

	/* 1. the webhooks */
	t0 = itest_now_ms();
	for (c = 0; c < companies; c++)
		for (k = 0; k < per_company; k++) {
			create(c, k);
			if (started - finished > IN_FLIGHT)
				drain(IN_FLIGHT / 2);
		}
	drain(0);
	m_hooks = mem();
	printf("%ld period webhooks in %ld companies stored in %lld ms; Redis %.1f MB\n",
	       companies * per_company, companies, (long long)(itest_now_ms() - t0),
	       (double)m_hooks / 1e6);

	/* 2. the promotions (no hook written yet: nothing queued) */
	t0 = itest_now_ms();
	now = clock_wall_ms();
	for (i = 0; i < promos; i++)
		for (c = 0; c < companies; c++) {
			promotion(c, i, now);
			if (started - finished > IN_FLIGHT)
				drain(IN_FLIGHT / 2);
		}
	drain(0);
	m_promos = mem();
	printf("%ld promotions stored in %lld ms; Redis %.1f MB: %.0f bytes per tracked "
	       "promotion (its 200-byte data included)\n", promos * companies,
	       (long long)(itest_now_ms() - t0), (double)m_promos / 1e6,
	       (double)(m_promos - m_hooks) / (double)(promos * companies));

	/* 3. the scheduler: hooks written, what is due at once claimed */
	t0 = itest_now_ms();
	reg = registry_new(base, &cfg, st, err, sizeof(err));
	sched = reg ? scheduler_new(base, &cfg, st, reg, err, sizeof(err)) : NULL;
	if (!sched)
		die(err);
	if (itest_run_until(base, loaded, reg, 600000) < 0)
		die("the registry did not load");
	printf("registry loaded in %lld ms\n", (long long)(itest_now_ms() - t0));
	{
		long long want = 2 * companies;
		long long got;

		do {
			long wait_ms = -1;

			redisReply *rr;

			itest_run_until(base, below, &wait_ms, 1000);
			rr = itest_cmd(raw, "HLEN {pw}:period-hooks-sync");
			got = rr->integer;
			freeReplyObject(rr);
		} while (got < want && itest_now_ms() - t0 < 600000);
		printf("registry loaded and %lld company/kind sets written in %lld ms\n", got,
		       (long long)(itest_now_ms() - t0));
	}
	if (itest_run_until(base, nothing_due, NULL, 1800000) < 0)
		die("the backlog did not drain");
	printf("occurrences already due (open windows) claimed in %lld ms from the start\n",
	       (long long)(itest_now_ms() - t0));
	{
		long never = -1;

		/* the round in flight when the queue emptied */
		itest_run_until(base, below, &never, 2000);
	}
	sched_figures(sched, &pass_s, &claimed0);
	m_sync = mem();
	{
		long long hooks_sets = keys_memory("{pw}:period-hooks*");
		long long due = keys_memory("{pw}:period-due");
		long long claims = keys_memory("{pw}:retr*") + keys_memory("{pw}:occurrences");
		long long states = keys_memory("{pw}:promo*");

		printf("%lld occurrences claimed; Redis %.1f MB: promotion states, date "
		       "indexes and expiry queue %.0f bytes per promotion, due queue %.0f "
		       "bytes per promotion, hooks sets %.0f bytes per period webhook, "
		       "claims (retry jobs, occurrences) %.0f bytes per claim\n", claimed0,
		       (double)m_sync / 1e6, (double)states / (double)(promos * companies),
		       (double)due / (double)(promos * companies),
		       (double)hooks_sets / (double)(companies * per_company),
		       claimed0 > 0 ? (double)claims / (double)claimed0 : 0.0);
	}

	/* 4. steady ticks, after the scheduler caught up with the time this
	 * process spent reading sizes (its loop did not turn meanwhile) */
	if (itest_run_until(base, nothing_due, NULL, 60000) < 0)
		die("the queue did not drain");
	{
		long never = -1;

		itest_run_until(base, below, &never, 2000);
	}
	sched_figures(sched, &pass_s, &claimed0);
	usec0 = script_usec();
	steady0 = clock_wall_ms();
	for (i = 0; i < seconds; i++) {
		int64_t until = itest_now_ms() + 1000;
		long never = -1;

		itest_run_until(base, below, &never, until - itest_now_ms());
		sched_figures(sched, &pass_s, &claimed1);
		pass_sum += pass_s;
		if (pass_s > pass_max)
			pass_max = pass_s;
	}
	printf("%ld period webhooks, %ld companies, %ld promotions, %ld s of 1 s ticks:\n",
	       companies * per_company, companies, promos * companies, seconds);
	printf("  Redis time in scripts: %.2f ms per tick; the pass as the scheduler "
	       "saw it: %.2f ms on average, %.2f ms at most; %lld occurrences claimed\n",
	       (double)(script_usec() - usec0) / 1000.0 / (double)seconds,
	       pass_sum * 1000.0 / (double)seconds, pass_max * 1000.0, claimed1 - claimed0);
	delays(steady0);
	printf("  Redis memory: %.1f MB before, %.1f MB with the webhooks, %.1f MB with "
	       "the promotions, %.1f MB after the first passes\n", (double)m0 / 1e6,
	       (double)m_hooks / 1e6, (double)m_promos / 1e6, (double)m_sync / 1e6);

	scheduler_free(sched);
	registry_free(reg);
	store_free(st);
	redisFree(raw);
	event_base_free(base);
	config_release(&cfg);
	return 0;
}
