/*
 * Integration test of store_promos.c against a real Redis (REDIS_URL):
 * promotion changes applied in event-time order (late events, tombstones,
 * moved dates), the company's period webhooks written as the scheduler
 * writes them, and the passes over the due queue: the window
 * S - P <= now < S to the millisecond, passed dates, other companies,
 * starting and ending, exactly-once claims across two stores racing (with
 * and without the lock, entries put back), a hook created, left out of a
 * write or with a longer period, the claim budget, the dates queued again
 * in chunks, the lock, the retry job the pipeline reads back and its
 * re-check, pruning (the state shrinking back, MEMORY USAGE printed), and
 * the cost of passes over 10,000 promotions (printed, not asserted).
 */
#include "promo_webhooks/event.h"
#include "promo_webhooks/rfc3339.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/retryjob.h"
#include "promo_webhooks/sign.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/store_outcomes.h"
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/webhook.h"
#include "testutil.h"
#include "itest.h"

#include <signal.h>

#include <yajl/yajl_tree.h>

#define TEST_DB 14
#define ACME "acme"
#define GLOBEX "globex"
#define NOW0 1767225600000LL   /* 2026-01-01T00:00:00Z */
#define MINUTE 60000LL
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define W1 "b0000000000000000000000000000001"
#define W2 "b0000000000000000000000000000002"
#define W3 "b0000000000000000000000000000003"
#define WG "b00000000000000000000000000000a1"

static struct event_base *base;
static struct config cfg;
static redisContext *raw;
static struct store *sa, *sb; /* two replicas' stores */

/* ---- capturing callback results ---- */

struct wres {
	int done;
	enum store_status status;
	int64_t version;
};

static void on_write(void *arg, enum store_status status, int64_t version)
{
	struct wres *r = arg;

	r->done = 1;
	r->status = status;
	r->version = version;
}

struct sres {
	int done;
	enum store_status status;
	size_t claimed;
	size_t pruned;
	int skipped;
	int more;
};

static void on_scan(void *arg, enum store_status status,
		    const struct store_tick_result *t)
{
	struct sres *r = arg;

	r->done = 1;
	r->status = status;
	r->claimed = t->claimed;
	r->pruned = t->pruned;
	r->skipped = t->skipped;
	r->more = t->more;
}

static void wait_done(void *r)
{
	itest_wait_done(base, r, 10000);
}

/* ---- promotions ---- */

struct promo {
	const char *company;
	const char *id;
	int64_t time;
	int deleted;
	const char *data;   /* NULL: {"promotionId":"<id>"} */
	int64_t start;      /* 0: none */
	int64_t end;        /* 0: none */
};

/* The wall clock the changes are applied at: the day before the tests'
 * "now" unless a test says otherwise (a date at or before it is passed). */
static int64_t apply_now = NOW0 - DAY;
#define RETENTION (2 * DAY)

/* Applies one change through st; returns 1 applied, 0 ignored. */
static int64_t apply_on(struct store *st, const struct promo *p)
{
	struct store_promotion pr;
	struct wres r;
	char data[256];

	if (p->data)
		snprintf(data, sizeof(data), "%s", p->data);
	else
		snprintf(data, sizeof(data), "{\"promotionId\":\"%s\"}", p->id);
	memset(&pr, 0, sizeof(pr));
	pr.company_id = p->company;
	pr.promotion_id = p->id;
	pr.event_time_ms = p->time;
	pr.deleted = p->deleted;
	pr.data = data;
	pr.data_len = strlen(data);
	pr.has_start = p->start != 0;
	pr.start_ms = p->start;
	pr.has_end = p->end != 0;
	pr.end_ms = p->end;
	pr.now_ms = apply_now;
	pr.retention_ms = RETENTION;
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_promotion_apply(st, &pr, on_write, &r), 0);
	CHECK_INT(r.done, 0); /* never called back from inside the call */
	wait_done(&r);
	CHECK_INT(r.status, STORE_OK);
	return r.version;
}

static int64_t apply(const struct promo *p)
{
	return apply_on(sa, p);
}

/* Shorthand: a promotion of company with a start (and no end). */
static void promo_start(const char *company, const char *id, int64_t start)
{
	struct promo p = { company, id, NOW0 - HOUR, 0, NULL, start, 0 };

	CHECK_INT(apply(&p), 1);
}

/* ---- raw Redis ---- */

/* The score of member in the sorted set key, or -1 when absent. */
static long long zscore(const char *key, const char *member)
{
	redisReply *rr = itest_cmd(raw, "ZSCORE %s %s", key, member);
	long long v = -1;

	if (rr->type == REDIS_REPLY_STRING)
		v = strtoll(rr->str, NULL, 10);
	freeReplyObject(rr);
	return v;
}

static char *hget(const char *key, const char *field)
{
	redisReply *rr = itest_cmd(raw, "HGET %s %s", key, field);
	char *s = rr->type == REDIS_REPLY_STRING ? strdup(rr->str) : NULL;

	freeReplyObject(rr);
	return s;
}

static long long zcard(const char *key)
{
	redisReply *rr = itest_cmd(raw, "ZCARD %s", key);
	long long n = rr->integer;

	freeReplyObject(rr);
	return n;
}

static long long rcount_h(const char *key)
{
	redisReply *rr = itest_cmd(raw, "HLEN %s", key);
	long long n = rr->integer;

	freeReplyObject(rr);
	return n;
}

static long long count_keys(const char *pattern)
{
	redisReply *rr = itest_cmd(raw, "KEYS %s", pattern);
	long long n = (long long)rr->elements;

	freeReplyObject(rr);
	return n;
}

/* The claimed occurrences ({pw}:occurrences) whose member begins with
 * prefix ("<W>:<X>:<start|end>:<S>"). */
static long long count_occ(const char *prefix)
{
	redisReply *rr = itest_cmd(raw, "ZRANGE {pw}:occurrences 0 -1");
	long long n = 0;
	size_t i;

	for (i = 0; i < rr->elements; i++) {
		if (strncmp(rr->element[i]->str, prefix, strlen(prefix)) == 0)
			n++;
	}
	freeReplyObject(rr);
	return n;
}

/* ---- JSON ---- */

static yajl_val jparse(const char *s)
{
	char err[128];
	yajl_val v = yajl_tree_parse(s, err, sizeof(err));

	if (!v)
		fprintf(stderr, "unparsable JSON (%s): %s\n", err, s);
	return v;
}

static yajl_val jfield(yajl_val obj, const char *name)
{
	const char *path[2] = { name, NULL };

	return yajl_tree_get(obj, path, yajl_t_any);
}

/* ---- the scheduler pass ---- */

static struct store_period_hook mkhook(const char *id, const char *company,
				       enum event_type type, enum period_unit unit,
				       int64_t value)
{
	struct store_period_hook h;

	h.webhook_id = id;
	h.company_id = company;
	h.type = type;
	h.period = unit;
	h.period_value = value;
	h.period_ms = value * period_unit_minutes(unit) * MINUTE;
	return h;
}

/* The groups (company, kind) written so far, to write a group that went
 * away as empty, as the scheduler does. */
static struct {
	char company[32];
	enum event_type type;
} groups[64];
static size_t n_groups;
static int64_t hooks_version;

static void sync_group(struct store *st, const char *company, enum event_type type,
		       const struct store_period_hook *hooks, size_t n, int64_t now)
{
	struct store_period_hook g[64];
	char digest[STORE_DIGEST_LEN];
	struct wres r;
	size_t i, k = 0;

	for (i = 0; i < n && k < 64; i++)
		if (strcmp(hooks[i].company_id, company) == 0 && hooks[i].type == type)
			g[k++] = hooks[i];
	store_period_hooks_digest(g, k, digest);
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_period_hooks_sync(st, company, type, hooks_version, digest, g, k,
					  now, on_write, &r), 0);
	wait_done(&r);
	CHECK_INT(r.status, STORE_OK);
}

/* Writes hooks[0..n) as the scheduler does: one set per company and
 * kind, a set no hook is in any more written empty. */
static void sync_hooks(struct store *st, int64_t now,
		       const struct store_period_hook *hooks, size_t n)
{
	size_t i, j;

	hooks_version++;
	for (i = 0; i < n; i++) {
		for (j = 0; j < n_groups; j++)
			if (strcmp(groups[j].company, hooks[i].company_id) == 0 &&
			    groups[j].type == hooks[i].type)
				break;
		if (j == n_groups && n_groups < 64) {
			snprintf(groups[j].company, sizeof(groups[j].company), "%s",
				 hooks[i].company_id);
			groups[j].type = hooks[i].type;
			n_groups++;
		}
	}
	for (j = 0; j < n_groups; j++)
		sync_group(st, groups[j].company, groups[j].type, hooks, n, now);
}

/* One round of a pass through st (token "a" for sa, "b" for sb). */
static struct sres tick_on(struct store *st, int64_t now, int64_t lock_ms)
{
	char text[40];
	struct sres r;

	rfc3339_format(now, text, sizeof(text));
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_period_tick(st, now, text, lock_ms, st == sa ? "a" : "b", 1000,
				    1000, RETENTION, on_scan, &r), 0);
	CHECK_INT(r.done, 0);
	wait_done(&r);
	CHECK_INT(r.status, STORE_OK);
	return r;
}

static struct sres scan_on(struct store *st, int64_t now,
			   const struct store_period_hook *hooks, size_t n)
{
	sync_hooks(st, now, hooks, n);
	return tick_on(st, now, 1000);
}

/* The webhooks written, then one round through sa with the lock cleared
 * first (the lock is tested on its own): the number claimed. */
static long long scan(int64_t now, const struct store_period_hook *hooks, size_t n)
{
	struct sres r;

	itest_cmd_ok(raw, "DEL {pw}:scheduler:lock");
	r = scan_on(sa, now, hooks, n);
	CHECK_INT(r.skipped, 0);
	return (long long)r.claimed;
}

/* The queued jobs, decoded as the pipeline decodes them. */
struct jobs {
	size_t n;
	struct retry_job job[64];
	char *rid[64];
	long long due[64];
};

static void jobs_release(struct jobs *j)
{
	size_t i;

	for (i = 0; i < j->n; i++) {
		retry_job_release(&j->job[i]);
		free(j->rid[i]);
	}
	j->n = 0;
}

static void read_jobs(struct jobs *j)
{
	redisReply *rr = itest_cmd(raw, "HGETALL {pw}:retry-jobs");
	size_t i;

	j->n = 0;
	for (i = 0; i + 1 < rr->elements && j->n < 64; i += 2) {
		char err[128];
		const redisReply *v = rr->element[i + 1];

		if (retry_job_decode(&j->job[j->n], v->str, v->len, err, sizeof(err)) < 0) {
			fprintf(stderr, "undecodable job %s: %s\n", v->str, err);
			CHECK(0);
			continue;
		}
		j->rid[j->n] = strdup(rr->element[i]->str);
		j->due[j->n] = zscore("{pw}:retries", rr->element[i]->str);
		j->n++;
	}
	freeReplyObject(rr);
}

/* The job for event id eid ("<X>:<start|end>:<S>"), or NULL. */
static const struct retry_job *job_for(const struct jobs *j, const char *eid)
{
	size_t i;

	for (i = 0; i < j->n; i++)
		if (strcmp(j->job[i].event_id, eid) == 0)
			return &j->job[i];
	return NULL;
}

static void event_id(char *out, size_t len, const char *x, const char *which,
		     int64_t s)
{
	snprintf(out, len, "%s:%s:%lld", x, which, (long long)s);
}

/* ---- tests ---- */

/* Changes apply in event-time order: a late Updated is ignored, a deleted
 * promotion stays deleted (also against an Updated of the same ms), moved
 * dates replace the old index entries, a later Created brings it back. */
static void test_apply_order(void)
{
	struct promo p = { ACME, "P1", 1000, 0, "{\"promotionId\":\"P1\",\"url\":\"https://x.example/a/b\",\"q\":\"\\\\/\\u00e9\"}",
			   NOW0 + HOUR, NOW0 + DAY };
	yajl_val st;
	char *doc;

	itest_cmd_ok(raw, "FLUSHDB");
	CHECK_INT(apply(&p), 1);
	CHECK_INT(zscore("{pw}:promo-start:" ACME, "P1"), NOW0 + HOUR);
	CHECK_INT(zscore("{pw}:promo-end:" ACME, "P1"), NOW0 + DAY);
	doc = hget("{pw}:promo:" ACME, "P1");
	st = doc ? jparse(doc) : NULL;
	CHECK(st != NULL);
	if (st) {
		yajl_val data = jfield(st, "data");

		CHECK_INT(YAJL_GET_INTEGER(jfield(st, "time")), 1000);
		CHECK(YAJL_IS_FALSE(jfield(st, "deleted")));
		CHECK(data && YAJL_IS_STRING(data));
		CHECK_STR(data ? YAJL_GET_STRING(data) : NULL, p.data);
		CHECK_INT(YAJL_GET_INTEGER(jfield(st, "start")), NOW0 + HOUR);
		CHECK_INT(YAJL_GET_INTEGER(jfield(st, "end")), NOW0 + DAY);
		yajl_tree_free(st);
	}
	free(doc);
	/* Pruned a minute after its last date (the state keeps its data
	 * until then); no hook of acme yet, so no date is queued. */
	CHECK_INT(zscore("{pw}:promo-expiry", ACME "\nP1"), NOW0 + DAY + MINUTE);
	CHECK_INT(zcard("{pw}:period-due"), 0);

	/* Updated: new start, no end. */
	p.time = 2000;
	p.start = NOW0 + 2 * HOUR;
	p.end = 0;
	CHECK_INT(apply(&p), 1);
	CHECK_INT(zscore("{pw}:promo-start:" ACME, "P1"), NOW0 + 2 * HOUR);
	CHECK_INT(zscore("{pw}:promo-end:" ACME, "P1"), -1);

	/* A late Updated (older event time) brings no older dates back. */
	p.time = 1500;
	p.start = NOW0 + 3 * HOUR;
	p.end = NOW0 + DAY;
	CHECK_INT(apply(&p), 0);
	CHECK_INT(zscore("{pw}:promo-start:" ACME, "P1"), NOW0 + 2 * HOUR);
	CHECK_INT(zscore("{pw}:promo-end:" ACME, "P1"), -1);

	/* The same event again (a redelivery) applies, harmlessly. */
	p.time = 2000;
	p.start = NOW0 + 2 * HOUR;
	p.end = 0;
	CHECK_INT(apply(&p), 1);

	/* Deleted: a tombstone, both indexes cleared. */
	p.time = 3000;
	p.deleted = 1;
	CHECK_INT(apply(&p), 1);
	CHECK_INT(zscore("{pw}:promo-start:" ACME, "P1"), -1);
	CHECK_INT(zscore("{pw}:promo-end:" ACME, "P1"), -1);
	doc = hget("{pw}:promo:" ACME, "P1");
	CHECK_STR(doc, "{\"time\":3000,\"deleted\":true}");
	free(doc);
	/* A tombstone goes after the retention, from when it was written. */
	CHECK_INT(zscore("{pw}:promo-expiry", ACME "\nP1"), apply_now + RETENTION);

	/* Out of order after the delete: no resurrection, not even at the
	 * same millisecond. */
	p.deleted = 0;
	p.time = 2500;
	p.start = NOW0 + 4 * HOUR;
	CHECK_INT(apply(&p), 0);
	p.time = 3000;
	CHECK_INT(apply(&p), 0);
	CHECK_INT(zscore("{pw}:promo-start:" ACME, "P1"), -1);

	/* A Created later than the delete is a promotion again. */
	p.time = 4000;
	CHECK_INT(apply(&p), 1);
	CHECK_INT(zscore("{pw}:promo-start:" ACME, "P1"), NOW0 + 4 * HOUR);

	/* A delete of a promotion never seen leaves a tombstone that a late
	 * Created cannot get past. */
	p.id = "P2";
	p.time = 5000;
	p.deleted = 1;
	CHECK_INT(apply(&p), 1);
	p.deleted = 0;
	p.time = 4900;
	CHECK_INT(apply(&p), 0);
	CHECK_INT(zscore("{pw}:promo-start:" ACME, "P2"), -1);

	/* Companies are apart. */
	p.company = GLOBEX;
	p.id = "P1";
	p.time = 1;
	CHECK_INT(apply(&p), 1);
	CHECK_INT(zscore("{pw}:promo-start:" GLOBEX, "P1"), NOW0 + 4 * HOUR);
	CHECK_INT(zscore("{pw}:promo-start:" ACME, "P1"), NOW0 + 4 * HOUR);
}

/* The window to the millisecond: S == now is not due (passed), S - P ==
 * now is due, S - P == now + 1 is not yet; a passed S never fires; the
 * job is the pipeline's format. */
static void test_window(void)
{
	struct store_period_hook h = mkhook(W1, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD,
					    PERIOD_MINUTES, 1);
	const int64_t now = NOW0;
	const struct retry_job *j;
	struct jobs jobs;
	char eid[128], text[40];
	redisReply *rr;
	size_t i;

	itest_cmd_ok(raw, "FLUSHDB");
	promo_start(ACME, "at-now", now);                   /* S == now: passed */
	promo_start(ACME, "edge", now + MINUTE);            /* S - P == now: due */
	promo_start(ACME, "next", now + MINUTE + 1);        /* due 1 ms later */
	promo_start(ACME, "soon", now + 1);                 /* due */
	promo_start(ACME, "past", now - 1);                 /* passed */
	promo_start(ACME, "later", now + 2 * MINUTE);       /* not yet */
	{
		struct promo e = { ACME, "end-only", NOW0 - HOUR, 0, NULL, 0, now + 10 };

		CHECK_INT(apply(&e), 1); /* an end date: not for a Starting hook */
	}

	CHECK_INT(scan(now, &h, 1), 2);
	read_jobs(&jobs);
	CHECK_INT(jobs.n, 2);
	event_id(eid, sizeof(eid), "edge", "start", now + MINUTE);
	j = job_for(&jobs, eid);
	CHECK(j != NULL);
	rfc3339_format(now, text, sizeof(text));
	if (j) {
		char want_id[64];

		CHECK_STR(j->webhook_id, W1);
		CHECK_STR(j->company_id, ACME);
		CHECK_INT(j->type, EVENT_PROMOTION_STARTING_IN_PERIOD);
		CHECK_STR(j->occurred_at, text);
		CHECK_INT(j->period, PERIOD_MINUTES);
		CHECK_INT(j->period_value, 1);
		CHECK_INT(j->attempt, 1);
		CHECK_STR(j->data, "{\"promotionId\":\"edge\"}");
		/* derived in C: sign_message_id over the occurrence */
		sign_message_id(RETRY_JOB_PERIOD_SOURCE, "edge:start:1767225660000", W1, "",
				want_id);
		CHECK_STR(j->message_id, want_id);
		CHECK_INT(strlen(j->message_id), 36);
	}
	event_id(eid, sizeof(eid), "soon", "start", now + 1);
	CHECK(job_for(&jobs, eid) != NULL);
	for (i = 0; i < jobs.n; i++) {
		char prefix[64];

		/* "<webhookId>:<due ms>:<seq>", due now */
		snprintf(prefix, sizeof(prefix), "%s:%lld:", W1, (long long)now);
		CHECK(strncmp(jobs.rid[i], prefix, strlen(prefix)) == 0);
		CHECK_INT(jobs.due[i], now);
	}
	jobs_release(&jobs);
	CHECK_INT(count_occ(""), 2);

	/* The same instant again: nothing new. 1 ms later: "next" enters. */
	CHECK_INT(scan(now, &h, 1), 0);
	CHECK_INT(scan(now + 1, &h, 1), 1);
	read_jobs(&jobs);
	event_id(eid, sizeof(eid), "next", "start", now + MINUTE + 1);
	CHECK(job_for(&jobs, eid) != NULL);
	CHECK_INT(jobs.n, 3);
	jobs_release(&jobs);

	/* Much later (every S passed but "later", due now): "at-now" and
	 * "past" never fired. */
	CHECK_INT(scan(now + MINUTE + 5, &h, 1), 1);
	CHECK_INT(scan(now + MINUTE + 6, &h, 1), 0);
	read_jobs(&jobs);
	CHECK_INT(jobs.n, 4);
	event_id(eid, sizeof(eid), "at-now", "start", now);
	CHECK(job_for(&jobs, eid) == NULL);
	event_id(eid, sizeof(eid), "past", "start", now - 1);
	CHECK(job_for(&jobs, eid) == NULL);
	jobs_release(&jobs);

	/* A claimed occurrence is kept until a day after S. */
	rr = itest_cmd(raw, "ZSCORE {pw}:occurrences " W1 ":edge:start:%lld",
		       (long long)(now + MINUTE));
	CHECK(rr->type == REDIS_REPLY_STRING &&
	      atoll(rr->str) == now + MINUTE + DAY);
	freeReplyObject(rr);
}

/* EndingInPeriod looks at the end dates; Hours and Days periods. */
static void test_ending(void)
{
	struct store_period_hook hooks[2] = {
		mkhook(W1, ACME, EVENT_PROMOTION_ENDING_IN_PERIOD, PERIOD_HOURS, 2),
		mkhook(W2, ACME, EVENT_PROMOTION_ENDING_IN_PERIOD, PERIOD_DAYS, 1),
	};
	struct promo e1 = { ACME, "E1", 1, 0, NULL, NOW0 + 10, NOW0 + 2 * HOUR };
	struct promo e2 = { ACME, "E2", 1, 0, NULL, 0, NOW0 + 3 * HOUR };
	const struct retry_job *j;
	struct jobs jobs;
	char eid[128];

	itest_cmd_ok(raw, "FLUSHDB");
	CHECK_INT(apply(&e1), 1);
	CHECK_INT(apply(&e2), 1);
	/* W1 (2 h): E1; W2 (1 day): E1 and E2. */
	CHECK_INT(scan(NOW0, hooks, 2), 3);
	read_jobs(&jobs);
	event_id(eid, sizeof(eid), "E1", "end", NOW0 + 2 * HOUR);
	j = job_for(&jobs, eid);
	CHECK(j != NULL);
	if (j) {
		CHECK_INT(j->type, EVENT_PROMOTION_ENDING_IN_PERIOD);
		CHECK(strcmp(j->webhook_id, W1) == 0 || strcmp(j->webhook_id, W2) == 0);
	}
	event_id(eid, sizeof(eid), "E2", "end", NOW0 + 3 * HOUR);
	j = job_for(&jobs, eid);
	CHECK(j != NULL);
	if (j) {
		CHECK_STR(j->webhook_id, W2);
		CHECK_INT(j->period, PERIOD_DAYS);
		CHECK_INT(j->period_value, 1);
	}
	jobs_release(&jobs);
	/* An hour later E2 enters W1's window. */
	CHECK_INT(scan(NOW0 + HOUR, hooks, 2), 1);
	CHECK_INT(scan(NOW0 + HOUR + 1, hooks, 2), 0);
}

/* Another company's webhook never fires for this company's promotions. */
static void test_other_company(void)
{
	struct store_period_hook hooks[2] = {
		mkhook(WG, GLOBEX, EVENT_PROMOTION_STARTING_IN_PERIOD, PERIOD_MINUTES, 5),
		mkhook(W1, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD, PERIOD_MINUTES, 5),
	};
	struct jobs jobs;
	size_t i;

	itest_cmd_ok(raw, "FLUSHDB");
	promo_start(ACME, "A1", NOW0 + MINUTE);
	CHECK_INT(scan(NOW0, hooks, 2), 1);
	/* A new acme promotion inside the window (the fresh-date path). */
	promo_start(ACME, "A2", NOW0 + 2 * MINUTE);
	CHECK_INT(scan(NOW0 + 1, hooks, 2), 1);
	read_jobs(&jobs);
	CHECK_INT(jobs.n, 2);
	for (i = 0; i < jobs.n; i++) {
		CHECK_STR(jobs.job[i].webhook_id, W1);
		CHECK_STR(jobs.job[i].company_id, ACME);
	}
	jobs_release(&jobs);
	/* A globex promotion with the same id is globex's alone. */
	promo_start(GLOBEX, "A1", NOW0 + 3 * MINUTE);
	CHECK_INT(scan(NOW0 + 2, hooks, 2), 1);
	read_jobs(&jobs);
	CHECK_INT(jobs.n, 3);
	CHECK(job_for(&jobs, "A1:start:1767225780000") != NULL &&
	      strcmp(job_for(&jobs, "A1:start:1767225780000")->webhook_id, WG) == 0);
	jobs_release(&jobs);
}

/* Dates set after a hook's previous pass, inside its open window: a new
 * promotion, a moved date (the old S never fires), a deleted one. */
static void test_changes(void)
{
	struct store_period_hook h = mkhook(W1, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD,
					    PERIOD_MINUTES, 10);
	struct promo p = { ACME, "M1", 10, 0, NULL, NOW0 + HOUR, 0 };
	struct jobs jobs;
	char eid[128];

	itest_cmd_ok(raw, "FLUSHDB");
	CHECK_INT(apply(&p), 1);
	CHECK_INT(scan(NOW0, &h, 1), 0);
	/* Created already inside the window: found at the next pass. */
	promo_start(ACME, "N1", NOW0 + 5 * MINUTE);
	CHECK_INT(scan(NOW0 + 1000, &h, 1), 1);
	/* M1 moves into the window: the new S fires at once... */
	p.time = 20;
	p.start = NOW0 + 3 * MINUTE;
	CHECK_INT(apply(&p), 1);
	CHECK_INT(scan(NOW0 + 2000, &h, 1), 1);
	/* ...and moving it back out and in again to the same S does not
	 * fire twice. */
	p.time = 30;
	p.start = NOW0 + HOUR;
	CHECK_INT(apply(&p), 1);
	p.time = 40;
	p.start = NOW0 + 3 * MINUTE;
	CHECK_INT(apply(&p), 1);
	CHECK_INT(scan(NOW0 + 3000, &h, 1), 0);
	/* The old S (NOW0 + 1 h) is gone: nothing when its window opens. */
	p.time = 50;
	p.start = NOW0 + 2 * HOUR;
	CHECK_INT(apply(&p), 1);
	CHECK_INT(scan(NOW0 + HOUR - 10 * MINUTE, &h, 1), 0);
	CHECK_INT(scan(NOW0 + HOUR - 1, &h, 1), 0);
	/* Deleted before its window opens: nothing ever fires. */
	promo_start(ACME, "D1", NOW0 + HOUR + 15 * MINUTE);
	{
		struct promo d = { ACME, "D1", NOW0, 1, NULL, 0, 0 };

		CHECK_INT(apply(&d), 1);
	}
	CHECK_INT(scan(NOW0 + HOUR + 5 * MINUTE, &h, 1), 0);
	CHECK_INT(scan(NOW0 + HOUR + 6 * MINUTE, &h, 1), 0);
	CHECK_INT(scan(NOW0 + HOUR + 7 * MINUTE, &h, 1), 0);
	/* The new S of M1 fires when due, once. */
	CHECK_INT(scan(NOW0 + 2 * HOUR - 10 * MINUTE, &h, 1), 1);
	CHECK_INT(scan(NOW0 + 2 * HOUR - 5 * MINUTE, &h, 1), 0);
	read_jobs(&jobs);
	CHECK_INT(jobs.n, 3);
	event_id(eid, sizeof(eid), "M1", "start", NOW0 + 3 * MINUTE);
	CHECK(job_for(&jobs, eid) != NULL);
	event_id(eid, sizeof(eid), "M1", "start", NOW0 + 2 * HOUR);
	CHECK(job_for(&jobs, eid) != NULL);
	event_id(eid, sizeof(eid), "M1", "start", NOW0 + HOUR);
	CHECK(job_for(&jobs, eid) == NULL);
	jobs_release(&jobs);
}

/* A hook new to its company's set, back after it was left out of a write,
 * or with a longer period has the company's dates queued again: a webhook
 * created or enabled again inside the window fires at the next pass. */
static void test_whole_window(void)
{
	struct store_period_hook h1 = mkhook(W1, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD,
					     PERIOD_MINUTES, 10);
	struct store_period_hook h2 = mkhook(W2, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD,
					     PERIOD_MINUTES, 10);
	struct store_period_hook both[2] = { h1, h2 };

	itest_cmd_ok(raw, "FLUSHDB");
	promo_start(ACME, "X1", NOW0 + 5 * MINUTE);
	CHECK_INT(scan(NOW0, &h1, 1), 1);
	/* W2 appears (created, or enabled again): X1 at once. */
	CHECK_INT(scan(NOW0 + 1, both, 2), 1);
	/* W2 is left out of one pass (disabled for a moment, or a lagging
	 * replica's cache) in which a date lands in the window... */
	promo_start(ACME, "X2", NOW0 + 6 * MINUTE);
	CHECK_INT(scan(NOW0 + 2, &h1, 1), 1);
	/* ...and still gets it when it is back. */
	CHECK_INT(scan(NOW0 + 3, both, 2), 1);
	CHECK_INT(scan(NOW0 + 4, both, 2), 0);
	/* A longer period: the wider window at once. */
	promo_start(ACME, "X3", NOW0 + 15 * MINUTE);
	CHECK_INT(scan(NOW0 + 5, both, 2), 0);
	h1.period_value = 20;
	h1.period_ms = 20 * MINUTE;
	both[0] = h1;
	CHECK_INT(scan(NOW0 + 6, both, 2), 1);
	CHECK_INT(scan(NOW0 + 5 * MINUTE + 1, both, 2), 1); /* X3 for W2 */
	CHECK_INT(count_occ(""), 6);
}

/* A replica whose cache lags (an older registry version) never undoes a
 * newer write; the same digest again only records the version. */
static void test_sync_versions(void)
{
	struct store_period_hook both[2] = {
		mkhook(W1, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD, PERIOD_MINUTES, 10),
		mkhook(W2, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD, PERIOD_HOURS, 1),
	};
	char d1[STORE_DIGEST_LEN], d2[STORE_DIGEST_LEN], *v;
	struct wres r;

	itest_cmd_ok(raw, "FLUSHDB");
	store_period_hooks_digest(both, 2, d2);
	store_period_hooks_digest(both, 1, d1);
	CHECK(strcmp(d1, d2) != 0);
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_period_hooks_sync(sb, ACME, both[0].type, 10, d2, both, 2, NOW0,
					  on_write, &r), 0);
	wait_done(&r);
	CHECK_INT(r.version, 1);
	/* version 9 without W2: ignored */
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_period_hooks_sync(sa, ACME, both[0].type, 9, d1, both, 1, NOW0,
					  on_write, &r), 0);
	wait_done(&r);
	CHECK_INT(r.status, STORE_OK);
	CHECK_INT(r.version, 0);
	CHECK_INT(zcard("{pw}:period-hooks:" ACME ":start"), 2);
	CHECK_INT(zscore("{pw}:period-hooks:" ACME ":start", W2 "\nHours\n1"), HOUR);
	/* version 11, same set: the version only */
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_period_hooks_sync(sa, ACME, both[0].type, 11, d2, both, 2, NOW0,
					  on_write, &r), 0);
	wait_done(&r);
	CHECK_INT(r.version, 1);
	v = hget("{pw}:period-hooks-sync", ACME "\nstart");
	CHECK(v && strncmp(v, "11:", 3) == 0 && strcmp(v + 3, d2) == 0);
	free(v);
}

/* Two stores scanning at once: one scans, the other is told to skip;
 * without the lock the occurrence keys alone keep the claims single. */
static void test_race(void)
{
	struct store_period_hook hooks[3] = {
		mkhook(W1, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD, PERIOD_MINUTES, 30),
		mkhook(W2, ACME, EVENT_PROMOTION_ENDING_IN_PERIOD, PERIOD_MINUTES, 30),
		mkhook(W3, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD, PERIOD_HOURS, 1),
	};
	struct sres ra, rb;
	char text[40], id[32];
	long long total = 0;
	int i, round;

	itest_cmd_ok(raw, "FLUSHDB");
	for (i = 0; i < 20; i++) {
		struct promo p = { ACME, id, 1, 0, NULL, NOW0 + (i + 1) * MINUTE,
				   NOW0 + (i + 2) * MINUTE };

		snprintf(id, sizeof(id), "R%d", i);
		CHECK_INT(apply(&p), 1);
	}
	rfc3339_format(NOW0, text, sizeof(text));
	sync_hooks(sa, NOW0, hooks, 3);
	memset(&ra, 0, sizeof(ra));
	memset(&rb, 0, sizeof(rb));
	itest_cmd_ok(raw, "DEL {pw}:scheduler:lock");
	CHECK_INT(store_period_tick(sa, NOW0, text, 60000, "a", 1000, 1000, RETENTION,
				    on_scan, &ra), 0);
	CHECK_INT(store_period_tick(sb, NOW0, text, 60000, "b", 1000, 1000, RETENTION,
				    on_scan, &rb), 0);
	wait_done(&ra);
	wait_done(&rb);
	CHECK_INT(ra.status, STORE_OK);
	CHECK_INT(rb.status, STORE_OK);
	CHECK_INT(ra.skipped + rb.skipped, 1);
	CHECK_INT(ra.claimed + rb.claimed, 60);
	/* Still held: the other store skips again and takes nothing; the
	 * holder goes on (a further round of its pass). */
	promo_start(ACME, "L1", NOW0 + 10 * MINUTE);
	ra = tick_on(ra.skipped ? sa : sb, NOW0 + 1, 60000);
	CHECK_INT(ra.skipped, 1);
	CHECK_INT(ra.claimed, 0);
	CHECK_INT(zscore("{pw}:period-due", "start\n" ACME "\nL1"), NOW0 + 10 * MINUTE - HOUR);

	/* No lock: both stores pass every round, each one with the entries
	 * due put back (a lost answer, a crash after the claim), and every
	 * occurrence is claimed once. */
	for (round = 0; round < 5; round++) {
		itest_cmd_ok(raw, "DEL {pw}:scheduler:lock");
		ra = tick_on(sa, NOW0 + 2 + round, 1);
		itest_cmd_ok(raw, "DEL {pw}:scheduler:lock");
		itest_cmd_ok(raw, "ZADD {pw}:period-due %lld start\n" ACME "\nL1",
			     (long long)(NOW0 - HOUR));
		rb = tick_on(sb, NOW0 + 2 + round, 1);
		CHECK_INT(ra.skipped + rb.skipped, 0);
		total += (long long)(ra.claimed + rb.claimed);
	}
	CHECK_INT(total, 2); /* L1 for W1 and W3 */
	CHECK_INT(count_occ(""), 62);
	{
		redisReply *rr = itest_cmd(raw, "ZCARD {pw}:retries");

		CHECK_INT(rr->integer, 62);
		freeReplyObject(rr);
	}
}

/* More than a round may claim (1000): the round stops after the date
 * that reached it, the next ones go on with the rest of the queue, and a
 * date set meanwhile is found among them. */
static void test_budget(void)
{
	struct store_period_hook hooks[2] = {
		mkhook(W1, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD, PERIOD_MINUTES, 1),
		mkhook(W2, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD, PERIOD_MINUTES, 1),
	};
	long long claimed, total, passes = 0;
	struct wres r;
	char id[32];
	int i;

	itest_cmd_ok(raw, "FLUSHDB");
	memset(&r, 0, sizeof(r));
	for (i = 0; i < 1500; i++) {
		struct store_promotion pr;
		char data[64];

		snprintf(id, sizeof(id), "B%04d", i);
		snprintf(data, sizeof(data), "{\"promotionId\":\"%s\"}", id);
		memset(&pr, 0, sizeof(pr));
		pr.company_id = ACME;
		pr.promotion_id = id;
		pr.event_time_ms = 1;
		pr.data = data;
		pr.data_len = strlen(data);
		pr.has_start = 1;
		pr.start_ms = NOW0 + 100 + (int64_t)i * 10;
		pr.now_ms = apply_now;
		CHECK_INT(store_promotion_apply(sa, &pr, on_write, &r), 0);
	}
	wait_done(&r);
	/* 1000 claims: 500 dates, each for both hooks. */
	CHECK_INT(scan(NOW0, hooks, 2), 1000);
	CHECK_INT(zcard("{pw}:period-due"), 1000);
	/* A date set meanwhile, due earlier than most. */
	promo_start(ACME, "Z", NOW0 + 155);
	total = 1000;
	do {
		claimed = scan(NOW0 + 1 + passes, hooks, 2);
		CHECK(claimed <= 1000);
		total += claimed;
		passes++;
	} while (claimed > 0 && passes < 10);
	CHECK_INT(total, 3002);
	CHECK_INT(passes, 4); /* 1000, 1000, 2, 0 */
	CHECK_INT(count_occ(""), 3002);
	CHECK_INT(count_occ(W1 ":Z:"), 1);
	CHECK_INT(count_occ(W2 ":Z:"), 1);
	CHECK_INT(zcard("{pw}:period-due"), 0);
}

/* A new hook queues its company's dates again in chunks of 500: 1,200
 * dates of one instant (a chunk takes the whole instant), 700 others
 * (chunks resume at their last date), every one queued once. */
static void test_requeue_chunks(void)
{
	struct store_period_hook h = mkhook(W1, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD,
					    PERIOD_HOURS, 1);
	struct wres r;
	char id[32];
	int i;

	itest_cmd_ok(raw, "FLUSHDB");
	memset(&r, 0, sizeof(r));
	for (i = 0; i < 1900; i++) {
		struct store_promotion pr;

		snprintf(id, sizeof(id), "Q%04d", i);
		memset(&pr, 0, sizeof(pr));
		pr.company_id = ACME;
		pr.promotion_id = id;
		pr.event_time_ms = 1;
		pr.data = "{}";
		pr.data_len = 2;
		pr.has_start = 1;
		pr.start_ms = i < 1200 ? NOW0 + 30 * MINUTE : NOW0 + 2 * HOUR + (i % 350) * 1000;
		pr.now_ms = apply_now;
		CHECK_INT(store_promotion_apply(sa, &pr, on_write, &r), 0);
	}
	wait_done(&r);
	CHECK_INT(zcard("{pw}:period-due"), 0); /* no hook yet */
	sync_hooks(sa, NOW0, &h, 1);
	CHECK_INT(zcard("{pw}:period-due"), 1900);
	CHECK_INT(zscore("{pw}:period-due", "start\n" ACME "\nQ0000"), NOW0 - 30 * MINUTE);
	CHECK_INT(zscore("{pw}:period-due", "start\n" ACME "\nQ1899"),
		  NOW0 + HOUR + (1899 % 350) * 1000);
	CHECK_INT(scan(NOW0, &h, 1), 1000);
	CHECK_INT(scan(NOW0, &h, 1), 200);
	CHECK_INT(scan(NOW0 + HOUR + 350 * 1000, &h, 1), 700);
	CHECK_INT(zcard("{pw}:period-due"), 0);
}

/* The claimed job comes back through store_retry_claim once the webhook
 * exists, as the pipeline claims it; a job whose webhook is gone is
 * dropped there. */
struct claimed {
	int done;
	enum store_status status;
	size_t n;
	char payload[4096];
	char id[256];
};

static void on_claim(void *arg, enum store_status status,
		     const struct store_claimed *items, size_t n)
{
	struct claimed *c = arg;

	c->done = 1;
	c->status = status;
	c->n = n;
	if (n > 0) {
		snprintf(c->payload, sizeof(c->payload), "%.*s",
			 (int)items[0].payload_len, items[0].payload);
		snprintf(c->id, sizeof(c->id), "%s", items[0].id);
	}
}

/* store_occurrence_check on occurrence (J1, start, S) queued as c->id:
 * returns the answer (1 still due, 0 dropped). */
static int64_t occurrence_check(const char *promo, const char *date, int64_t at,
				const char *retry_id)
{
	struct wres r;

	memset(&r, 0, sizeof(r));
	CHECK_INT(store_occurrence_check(sa, ACME, promo, date, at, retry_id, on_write, &r), 0);
	wait_done(&r);
	CHECK_INT(r.status, STORE_OK);
	return r.version;
}

static long long retry_jobs(void)
{
	redisReply *rr = redisCommand(raw, "HLEN {pw}:retry-jobs");
	long long n = rr && rr->type == REDIS_REPLY_INTEGER ? rr->integer : -1;

	freeReplyObject(rr);
	return n;
}

static void test_retry_path(void)
{
	struct store_period_hook h = mkhook(W1, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD,
					    PERIOD_MINUTES, 1);
	const char *data = "{\"promotionId\":\"J1\",\"name\":\"50% off \\\"all\\\"\","
			   "\"url\":\"https://shop.example/p/1\",\"n\":[1,2.5,null],"
			   "\"u\":\"\xc3\xa9\xe2\x82\xac\"}";
	struct promo p = { ACME, "J1", 1, 0, data, NOW0 + 30000, 0 };
	struct webhook_error err;
	struct retry_job job;
	struct webhook wh;
	struct claimed c;
	struct wres r;
	char e[128];
	const char *body = "{\"event\":\"Promotion.StartingInPeriod\",\"target\":"
			   "\"https://hooks.acme.example/p\",\"notificationPeriod\":\"Minutes\","
			   "\"notificationPeriodValue\":1}";

	itest_cmd_ok(raw, "FLUSHDB");
	webhook_init(&wh);
	wh.id = strdup(W1);
	wh.company_id = strdup(ACME);
	CHECK_INT(webhook_apply_json(&wh, WEBHOOK_CREATE, body, strlen(body), NOW0,
				     NULL, &err), 0);
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_webhook_create(sa, &wh, on_write, &r), 0);
	wait_done(&r);
	CHECK_INT(r.status, STORE_OK);
	webhook_release(&wh);

	CHECK_INT(apply(&p), 1);
	CHECK_INT(scan(NOW0, &h, 1), 1);
	memset(&c, 0, sizeof(c));
	CHECK_INT(store_retry_claim(sb, NOW0, 40000, 10, on_claim, &c), 0);
	wait_done(&c);
	CHECK_INT(c.status, STORE_OK);
	CHECK_INT(c.n, 1);
	/* The occurrence's plain fields (cjson may escape '/'); the job
	 * decoded from them carries data byte for byte. */
	CHECK_INT(retry_job_decode(&job, c.payload, strlen(c.payload), e, sizeof(e)), 0);
	CHECK_STR(job.data, data);
	CHECK_STR(job.event_id, "J1:start:1767225630000");
	retry_job_release(&job);

	/* Issue 12 part 5: before each attempt the occurrence is checked
	 * against its promotion. Still there with S unchanged: due. */
	CHECK_INT(occurrence_check("J1", "start", NOW0 + 30000, c.id), 1);
	CHECK_INT(retry_jobs(), 1);
	/* Another date than the one stored, or the other date: dropped. */
	CHECK_INT(occurrence_check("J1", "end", NOW0 + 30000, "no-such-retry"), 0);
	CHECK_INT(retry_jobs(), 1);
	/* S moved by an update: dropped, with its retry. */
	p.time = 2;
	p.start = NOW0 + 90000;
	CHECK_INT(apply(&p), 1);
	CHECK_INT(occurrence_check("J1", "start", NOW0 + 30000, c.id), 0);
	CHECK_INT(retry_jobs(), 0);
	/* The new S is due; after a Promotion.Deleted it is dropped too, and
	 * so is an occurrence of a promotion never seen. */
	CHECK_INT(occurrence_check("J1", "start", NOW0 + 90000, "r-2"), 1);
	p.time = 3;
	p.deleted = 1;
	CHECK_INT(apply(&p), 1);
	CHECK_INT(occurrence_check("J1", "start", NOW0 + 90000, "r-2"), 0);
	CHECK_INT(occurrence_check("J9", "start", NOW0 + 90000, "r-3"), 0);
}

/* 10,000 promotions spread over a day, 20 period webhooks of their
 * company (1 minute to 1 day): the first passes (whole windows, at most
 * 1000 claims each, every due occurrence claimed once in all) and the
 * steady ticks after them. The times are printed, not asserted. */
#define COST_N 10000
#define COST_HOOKS 20
#define COST_SPACING (DAY / COST_N)

/* Counts completed writes (arg: an int). */
static void on_count(void *arg, enum store_status status, int64_t version)
{
	int *n = arg;

	CHECK_INT(status, STORE_OK);
	(*n)++;
}

static int all_applied(void *arg)
{
	return *(int *)arg >= COST_N;
}

static void test_cost(void)
{
	static const int64_t periods[4][2] = {
		{ PERIOD_MINUTES, 1 }, { PERIOD_MINUTES, 30 }, { PERIOD_HOURS, 6 },
		{ PERIOD_DAYS, 1 },
	};
	struct store_period_hook hooks[COST_HOOKS];
	static char ids[COST_HOOKS][33];
	long long claimed, total = 0, want = 0;
	int64_t t0, first_ms = 0, drain_ms = 0, steady_ms = 0;
	int i, k, passes = 0;
	int applied = 0;
	char pid[32];

	itest_cmd_ok(raw, "FLUSHDB");
	for (i = 0; i < COST_N; i++) {
		struct store_promotion pr;
		char data[64];

		snprintf(pid, sizeof(pid), "C%05d", i);
		snprintf(data, sizeof(data), "{\"promotionId\":\"%s\"}", pid);
		memset(&pr, 0, sizeof(pr));
		pr.company_id = ACME;
		pr.promotion_id = pid;
		pr.event_time_ms = 1;
		pr.data = data;
		pr.data_len = strlen(data);
		pr.has_start = 1;
		pr.start_ms = NOW0 + 1 + (int64_t)i * COST_SPACING;
		pr.has_end = 1;
		pr.end_ms = pr.start_ms + HOUR;
		pr.now_ms = apply_now;
		CHECK_INT(store_promotion_apply(sa, &pr, on_count, &applied), 0);
	}
	if (itest_run_until(base, all_applied, &applied, 60000) < 0) {
		fprintf(stderr, "storing the promotions did not complete\n");
		exit(1);
	}
	for (i = 0; i < COST_HOOKS; i++) {
		snprintf(ids[i], sizeof(ids[i]), "c%031d", i);
		hooks[i] = mkhook(ids[i], ACME,
				  i % 2 ? EVENT_PROMOTION_ENDING_IN_PERIOD
					: EVENT_PROMOTION_STARTING_IN_PERIOD,
				  (enum period_unit)periods[i % 4][0], periods[i % 4][1]);
		for (k = 0; k < COST_N; k++) {
			int64_t s = NOW0 + 1 + (int64_t)k * COST_SPACING + (i % 2 ? HOUR : 0);

			want += s > NOW0 && s <= NOW0 + hooks[i].period_ms;
		}
	}
	/* Draining the whole windows at one instant. */
	do {
		t0 = itest_now_ms();
		claimed = scan(NOW0, hooks, COST_HOOKS);
		t0 = itest_now_ms() - t0;
		if (passes == 0)
			first_ms = t0;
		drain_ms += t0;
		CHECK(claimed <= 1000 + COST_HOOKS);
		total += claimed;
		passes++;
	} while (claimed > 0 && passes < 100);
	CHECK_INT(total, want);
	/* Then a tick a second. */
	for (i = 1; i <= 20; i++) {
		t0 = itest_now_ms();
		total += scan(NOW0 + i * 1000, hooks, COST_HOOKS);
		steady_ms += itest_now_ms() - t0;
	}
	fprintf(stderr, "cost: %d promotions over a day, %d period webhooks: "
		"%lld occurrences due at once claimed in %d passes (%lld ms, the "
		"first %lld ms); then %.2f ms per 1 s tick\n", COST_N, COST_HOOKS,
		want, passes - 1, (long long)drain_ms, (long long)first_ms,
		steady_ms / 20.0);
}

/* MEMORY USAGE (SAMPLES 0: exact) of every key of the test database. */
static long long keys_memory(void)
{
	redisReply *keys = itest_cmd(raw, "KEYS *");
	long long total = 0;
	size_t i;

	for (i = 0; i < keys->elements; i++) {
		redisReply *rr = itest_cmd(raw, "MEMORY USAGE %b SAMPLES 0",
					   keys->element[i]->str, keys->element[i]->len);

		total += rr->type == REDIS_REPLY_INTEGER ? rr->integer : 0;
		freeReplyObject(rr);
	}
	freeReplyObject(keys);
	return total;
}

/* Rounds of passes at now until one finds nothing more to take: the
 * number of states pruned. */
static long long prune_at(int64_t now)
{
	long long pruned = 0;
	struct sres r;
	int rounds = 0;

	do {
		itest_cmd_ok(raw, "DEL {pw}:scheduler:lock");
		r = tick_on(sa, now, 1000);
		pruned += (long long)r.pruned;
	} while (r.more && ++rounds < 100);
	return pruned;
}

/* Issue 14 part 2: the state shrinks back. 1,000 promotions with dates
 * and a 200-byte data, 200 tombstones, 200 promotions without dates. Only
 * the first keep their data and are indexed and queued; once their last
 * date passes they keep only time and dates (late events are still
 * ordered, occurrence_check still answers), and after the retention
 * nothing is left of any of them. Sizes from MEMORY USAGE, printed. */
#define PRUNE_N 1000
static void test_prune(void)
{
	struct store_period_hook h = mkhook(W1, ACME, EVENT_PROMOTION_STARTING_IN_PERIOD,
					    PERIOD_MINUTES, 10);
	long long base_mem, full_mem, stripped_mem, gone_mem;
	char id[32], data[256];
	char *doc;
	int i;

	itest_cmd_ok(raw, "FLUSHDB");
	apply_now = NOW0;
	CHECK_INT(scan(NOW0, &h, 1), 0); /* the hook's set, nothing due */
	base_mem = keys_memory();
	for (i = 0; i < PRUNE_N; i++) {
		struct promo p = { ACME, id, 1, 0, data, NOW0 + HOUR + i * 1000LL,
				   NOW0 + 2 * HOUR + i * 1000LL };

		snprintf(id, sizeof(id), "P%05d", i);
		snprintf(data, sizeof(data), "{\"promotionId\":\"%s\",\"name\":\"%0180d\"}",
			 id, i);
		CHECK_INT(apply(&p), 1);
	}
	for (i = 0; i < 200; i++) {
		struct promo d = { ACME, id, 1, 1, NULL, 0, 0 };
		struct promo n = { ACME, id, 1, 0, NULL, 0, 0 };

		snprintf(id, sizeof(id), "D%05d", i);
		CHECK_INT(apply(&d), 1);
		snprintf(id, sizeof(id), "N%05d", i);
		CHECK_INT(apply(&n), 1);
	}
	CHECK_INT(rcount_h("{pw}:promo:" ACME), PRUNE_N + 400);
	CHECK_INT(zcard("{pw}:promo-start:" ACME), PRUNE_N);
	CHECK_INT(zcard("{pw}:promo-end:" ACME), PRUNE_N);
	CHECK_INT(zcard("{pw}:period-due"), PRUNE_N);
	CHECK_INT(zcard("{pw}:promo-expiry"), PRUNE_N + 400);
	doc = hget("{pw}:promo:" ACME, "N00000");
	CHECK_STR(doc, "{\"time\":1,\"deleted\":false,\"start\":null,\"end\":null}");
	free(doc);
	full_mem = keys_memory();

	/* Before the last dates: nothing pruned. After them: the dated
	 * states shrink to time and dates; the rest waits for the retention. */
	CHECK_INT(prune_at(NOW0 + 2 * HOUR), 0);
	CHECK_INT(prune_at(NOW0 + 3 * HOUR), PRUNE_N);
	CHECK_INT(rcount_h("{pw}:promo:" ACME), PRUNE_N + 400);
	CHECK_INT(zcard("{pw}:promo-start:" ACME), 0);
	CHECK_INT(zcard("{pw}:promo-end:" ACME), 0);
	CHECK_INT(zcard("{pw}:period-due"), 0);
	doc = hget("{pw}:promo:" ACME, "P00000");
	CHECK_STR(doc, "{\"time\":1,\"start\":1767229200000,\"end\":1767232800000}");
	free(doc);
	CHECK_INT(zscore("{pw}:promo-expiry", ACME "\nP00000"), NOW0 + 3 * HOUR + RETENTION);
	{
		/* ordering still holds, and so does the re-check */
		struct promo late = { ACME, "P00000", 0, 0, NULL, NOW0 + 5 * HOUR, 0 };
		struct wres r;

		CHECK_INT(apply(&late), 0);
		memset(&r, 0, sizeof(r));
		CHECK_INT(store_occurrence_check(sa, ACME, "P00000", "start", NOW0 + HOUR,
						 "no-such-retry", on_write, &r), 0);
		wait_done(&r);
		CHECK_INT(r.version, 1);
	}
	stripped_mem = keys_memory();
	CHECK(stripped_mem < full_mem);

	/* After the retention: nothing of them left. */
	CHECK_INT(prune_at(NOW0 + 3 * HOUR + RETENTION), PRUNE_N + 400);
	CHECK_INT(count_keys("{pw}:promo*"), 0);
	gone_mem = keys_memory();
	CHECK(gone_mem <= base_mem);
	fprintf(stderr, "prune: %d promotions with a 200-byte data, 200 tombstones, "
		"200 without dates: %lld bytes of keys (%lld per dated promotion with "
		"its share), %lld once the dates passed, %lld after the retention "
		"(%lld before any)\n", PRUNE_N, full_mem,
		(full_mem - base_mem) / PRUNE_N, stripped_mem, gone_mem, base_mem);
	apply_now = NOW0 - DAY;
}

static int stores_ready(void *arg)
{
	return store_is_ready(sa) && store_is_ready(sb);
}

/* Permanent errors (issue 12 part 1): a state larger than one call may
 * carry is refused at once, without a callback; a script that Redis
 * refuses for good (here WRONGTYPE, a foreign writer) answers STORE_ERROR,
 * not STORE_UNAVAILABLE, so that the caller does not retry it for ever;
 * Redis being away stays STORE_UNAVAILABLE (tested in test_store). */
static void test_permanent(void)
{
	struct store_promotion pr;
	struct wres r;
	size_t big = (size_t)5 << 20;
	char *data = malloc(big + 3);

	CHECK(data != NULL);
	if (!data)
		return;
	data[0] = '"';
	memset(data + 1, 'x', big);
	data[big + 1] = '"';
	data[big + 2] = '\0';
	memset(&pr, 0, sizeof(pr));
	pr.company_id = "perm";
	pr.promotion_id = "P-big";
	pr.event_time_ms = NOW0;
	pr.data = data;
	pr.data_len = big + 2;
	pr.has_start = 1; /* a date ahead: the data is kept, so it must fit */
	pr.start_ms = NOW0 + HOUR;
	pr.now_ms = apply_now;
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_promotion_apply(sa, &pr, on_write, &r), STORE_PROMOTION_TOO_LARGE);
	CHECK_INT(r.done, 0);
	free(data);

	itest_cmd_ok(raw, "SET {pw}:promo:perm2 not-a-hash");
	pr.company_id = "perm2";
	pr.promotion_id = "P-1";
	pr.data = "{}";
	pr.data_len = 2;
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_promotion_apply(sa, &pr, on_write, &r), 0);
	wait_done(&r);
	CHECK_INT(r.status, STORE_ERROR);
	itest_cmd_ok(raw, "DEL {pw}:promo:perm2");
}

int main(void)
{
	char err[256];

	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	itest_config(&cfg, TEST_DB);
	base = event_base_new();
	if (!base) {
		fprintf(stderr, "event_base_new failed\n");
		return 1;
	}
	raw = itest_redis(&cfg);
	itest_cmd_ok(raw, "FLUSHDB");
	sa = store_new(base, &cfg, err, sizeof(err));
	sb = store_new(base, &cfg, err, sizeof(err));
	if (!sa || !sb) {
		fprintf(stderr, "store_new: %s\n", err);
		return 1;
	}
	if (itest_run_until(base, stores_ready, NULL, 5000) < 0) {
		fprintf(stderr, "redis not ready\n");
		return 1;
	}

	test_apply_order();
	test_window();
	test_ending();
	test_other_company();
	test_changes();
	test_whole_window();
	test_sync_versions();
	test_race();
	test_budget();
	test_requeue_chunks();
	test_retry_path();
	test_cost();
	test_permanent();
	test_prune();

	store_free(sa);
	store_free(sb);
	redisFree(raw);
	event_base_free(base);
	config_release(&cfg);
	return TEST_DONE();
}
