/*
 * The period scheduler at scale (issue 14 part 1), in process against a
 * real Redis (REDIS_URL): 50,000 enabled period webhooks across 5,000
 * companies (before the due queue, the scan carried every period webhook
 * in one script argument and failed for everyone past about 15,000), read
 * by the real registry, written per company by the real scheduler
 * (scheduler.c), and a promotion per company with both dates inside every
 * window: every one of the 50,000 occurrences is claimed, once, and a
 * promotion whose windows are not open yet claims nothing. Then a webhook
 * disabled and one created: the scheduler rewrites only their companies.
 * Wall clock: the scheduler reads it, so the dates are set from it.
 */
#include "promo_webhooks/clock.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/scheduler.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/webhook.h"
#include "testutil.h"
#include "itest.h"

#include <signal.h>

#define TEST_DB 21
#define COMPANIES 5000
#define PER_KIND 5       /* hooks per company and kind */
#define HOOKS (COMPANIES * PER_KIND * 2)
#define MINUTE 60000LL

static struct event_base *base;
static struct config cfg;
static redisContext *raw;
static struct store *st;
static int writes, write_errors;

static void on_write(void *arg, enum store_status status, int64_t version)
{
	(void)arg;
	(void)version;
	writes++;
	if (status != STORE_OK)
		write_errors++;
}

static int writes_reach(void *arg)
{
	return writes >= *(int *)arg;
}

static void wait_writes(int n)
{
	if (itest_run_until(base, writes_reach, &n, 120000) < 0) {
		fprintf(stderr, "writes did not complete: %d of %d\n", writes, n);
		exit(1);
	}
	CHECK_INT(write_errors, 0);
}

static int ready(void *arg)
{
	(void)arg;
	return store_is_ready(st);
}

static long long rcount(const char *cmd, const char *key)
{
	redisReply *rr = itest_cmd(raw, "%s %s", cmd, key);
	long long n = rr->type == REDIS_REPLY_INTEGER ? rr->integer : -1;

	freeReplyObject(rr);
	return n;
}

/* "<version>:<digest>" last written for a group. */
static void hget_sync(const char *field, char *out, size_t len)
{
	redisReply *rr = redisCommand(raw, "HGET {pw}:period-hooks-sync %b", field,
				      strlen(field));

	snprintf(out, len, "%s", rr && rr->type == REDIS_REPLY_STRING ? rr->str : "-");
	freeReplyObject(rr);
}

static long long want_jobs;

static int jobs_reach(void *arg)
{
	(void)arg;
	return rcount("HLEN", "{pw}:retry-jobs") >= want_jobs;
}

/* Creates webhook id of company with the given event and period. */
static void create(const char *id, const char *company, const char *event,
		   const char *period, int value)
{
	struct webhook_error err;
	struct webhook wh;
	char body[256];

	snprintf(body, sizeof(body),
		 "{\"event\":\"%s\",\"target\":\"https://hooks.example/%s\","
		 "\"notificationPeriod\":\"%s\",\"notificationPeriodValue\":%d}",
		 event, id, period, value);
	webhook_init(&wh);
	wh.id = strdup(id);
	wh.company_id = strdup(company);
	if (webhook_apply_json(&wh, WEBHOOK_CREATE, body, strlen(body), clock_wall_ms(),
			       NULL, &err) < 0) {
		fprintf(stderr, "bad test webhook: %s %s\n", err.field, err.message);
		exit(1);
	}
	CHECK_INT(store_webhook_create(st, &wh, on_write, NULL), 0);
	webhook_release(&wh);
}

static void promotion(const char *company, const char *id, int64_t start, int64_t end)
{
	struct store_promotion pr;
	char data[64];

	snprintf(data, sizeof(data), "{\"promotionId\":\"%s\"}", id);
	memset(&pr, 0, sizeof(pr));
	pr.company_id = company;
	pr.promotion_id = id;
	pr.event_time_ms = 1;
	pr.data = data;
	pr.data_len = strlen(data);
	pr.has_start = 1;
	pr.start_ms = start;
	pr.has_end = 1;
	pr.end_ms = end;
	CHECK_INT(store_promotion_apply(st, &pr, on_write, NULL), 0);
}

static const struct {
	const char *unit;
	int value;
} periods[PER_KIND] = {
	{ "Minutes", 45 }, { "Hours", 1 }, { "Hours", 6 }, { "Days", 1 }, { "Days", 2 },
};

int main(void)
{
	struct scheduler *sched;
	struct registry *reg;
	char err[256], id[40], company[16];
	char before1[64], before7[64], after1[64], after7[64];
	int64_t now, took;
	int c, k, n = 0;

	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	itest_config(&cfg, TEST_DB);
	cfg.scheduler_tick_ms = 100;
	base = event_base_new();
	raw = itest_redis(&cfg);
	itest_cmd_ok(raw, "FLUSHDB");
	st = store_new(base, &cfg, err, sizeof(err));
	if (!base || !st || itest_run_until(base, ready, NULL, 5000) < 0) {
		fprintf(stderr, "store not ready: %s\n", st ? "timeout" : err);
		return 1;
	}

	/* The webhooks, before any replica reads them; promotions of half
	 * the companies before the scheduler wrote their hooks (their dates
	 * are queued when it does), the other half after. */
	now = clock_wall_ms();
	for (c = 0; c < COMPANIES; c++) {
		snprintf(company, sizeof(company), "co%04d", c);
		for (k = 0; k < PER_KIND; k++) {
			snprintf(id, sizeof(id), "%08d%024d", c, k);
			create(id, company, "Promotion.StartingInPeriod", periods[k].unit,
			       periods[k].value);
			snprintf(id, sizeof(id), "%08d%024d", c, PER_KIND + k);
			create(id, company, "Promotion.EndingInPeriod", periods[k].unit,
			       periods[k].value);
			n += 2;
		}
		if (c % 2 == 0) {
			promotion(company, "P", now + 20 * MINUTE, now + 40 * MINUTE);
			n++;
		}
	}
	/* Not open for any hook: 3 days ahead. */
	promotion("co0000", "LATER", now + 3 * 24 * 60 * MINUTE, now + 4 * 24 * 60 * MINUTE);
	wait_writes(++n);
	CHECK_INT(rcount("HLEN", "{pw}:webhooks"), HOOKS);

	reg = registry_new(base, &cfg, st, err, sizeof(err));
	sched = reg ? scheduler_new(base, &cfg, st, reg, err, sizeof(err)) : NULL;
	if (!sched) {
		fprintf(stderr, "scheduler: %s\n", err);
		return 1;
	}
	for (c = 1; c < COMPANIES; c += 2) {
		snprintf(company, sizeof(company), "co%04d", c);
		promotion(company, "P", now + 20 * MINUTE, now + 40 * MINUTE);
		n++;
	}
	wait_writes(n);

	/* Every hook fires for its company's P: 5 start and 5 end windows
	 * (45 min to 2 days) hold S = now + 20 min and now + 40 min. */
	want_jobs = HOOKS;
	took = itest_run_until(base, jobs_reach, NULL, 180000);
	fprintf(stderr, "scale: %d period webhooks in %d companies: %lld of %d "
		"occurrences claimed in %lld ms\n", HOOKS, COMPANIES,
		rcount("HLEN", "{pw}:retry-jobs"), HOOKS, (long long)took);
	CHECK(took >= 0);
	CHECK_INT(rcount("ZCARD", "{pw}:occurrences"), HOOKS);
	CHECK_INT(rcount("HLEN", "{pw}:period-hooks-sync"), 2 * COMPANIES);
	CHECK_INT(rcount("ZCARD", "{pw}:period-hooks:co0000:start"), PER_KIND);
	/* A few passes more: nothing else (LATER's windows are not open). */
	{
		int64_t t0 = itest_now_ms();

		want_jobs = HOOKS + 1;
		itest_run_until(base, jobs_reach, NULL, 1000);
		CHECK(itest_now_ms() - t0 >= 1000);
	}
	CHECK_INT(rcount("HLEN", "{pw}:retry-jobs"), HOOKS);
	{
		redisReply *rr = itest_cmd(raw, "ZSCORE {pw}:period-due %s", "start\nco0000\nLATER");

		/* queued for the longest period's window: 2 days before S */
		CHECK(rr->type == REDIS_REPLY_STRING &&
		      atoll(rr->str) == now + 3 * 24 * 60 * MINUTE - 2 * 24 * 60 * MINUTE);
		freeReplyObject(rr);
	}

	/* A webhook created later in one company with a window open now:
	 * fires, and only its company's set is written again. */
	hget_sync("co0001\nstart", before1, sizeof(before1));
	hget_sync("co0007\nstart", before7, sizeof(before7));
	create("ffffffff000000000000000000000001", "co0007", "Promotion.StartingInPeriod",
	       "Minutes", 30);
	wait_writes(++n);
	want_jobs = HOOKS + 1;
	CHECK(itest_run_until(base, jobs_reach, NULL, 30000) >= 0);
	CHECK_INT(rcount("ZCARD", "{pw}:period-hooks:co0007:start"), PER_KIND + 1);
	hget_sync("co0001\nstart", after1, sizeof(after1));
	hget_sync("co0007\nstart", after7, sizeof(after7));
	CHECK_STR(after1, before1);
	CHECK(strcmp(after7, before7) != 0);

	scheduler_free(sched);
	registry_free(reg);
	store_free(st);
	redisFree(raw);
	event_base_free(base);
	config_release(&cfg);
	return TEST_DONE();
}
