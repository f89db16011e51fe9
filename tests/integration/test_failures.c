/*
 * Integration test of the failure rule in store.c against a real Redis
 * (REDIS_URL): failures counted in a window, the atomic disable (seen by
 * another store through pub/sub), the notice in the outbox, replicas
 * racing (one disable, one notice), retries with leases, the outbox
 * claim/ack, the attempt log (newest first, capped) and its cleanup, and
 * a flushed script cache.
 */
#include "promo_webhooks/log.h"
#include "promo_webhooks/rfc3339.h"
#include "promo_webhooks/notice.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/store_outcomes.h"
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/webhook.h"
#include "testutil.h"
#include "itest.h"

#include <signal.h>

#include <yajl/yajl_tree.h>

#define TEST_DB 13
#define COMPANY "acme"
#define EMAIL "ops@acme.example"
#define T0 1748856612345LL     /* a fixed attempt time, Unix ms */
#define T0_TEXT "2025-06-02T09:30:12.345Z"
#define WINDOW_MS 5000
#define THRESHOLD 3
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static struct event_base *base;
static struct config cfg;
static redisContext *raw;
static struct store *sa, *sb; /* two replicas' stores */

/* ---- capturing callback results ---- */

struct fres {
	int done;
	enum store_status status;
	enum store_failure_result result;
};

static void on_failure(void *arg, enum store_status status,
		       enum store_failure_result result)
{
	struct fres *r = arg;

	r->done = 1;
	r->status = status;
	r->result = result;
}

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

#define MAX_ITEMS 128

struct claimed {
	int done;
	enum store_status status;
	size_t n;
	char *id[MAX_ITEMS];
	char *payload[MAX_ITEMS];
	char *key[MAX_ITEMS]; /* NULL when none */
};

static void claimed_reset(struct claimed *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->id[i]);
		free(c->payload[i]);
		free(c->key[i]);
	}
	memset(c, 0, sizeof(*c));
}

static void on_claim(void *arg, enum store_status status,
		     const struct store_claimed *items, size_t n)
{
	struct claimed *c = arg;
	size_t i;

	c->done = 1;
	c->status = status;
	for (i = 0; i < n && i < MAX_ITEMS; i++) {
		c->id[i] = strdup(items[i].id);
		c->payload[i] = strndup(items[i].payload, items[i].payload_len);
		c->key[i] = items[i].key ? strdup(items[i].key) : NULL;
	}
	c->n = i;
}

struct attempts {
	int done;
	enum store_status status;
	size_t n;
	char *item[MAX_ITEMS];
};

static void attempts_reset(struct attempts *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->item[i]);
	memset(a, 0, sizeof(*a));
}

static void on_attempts(void *arg, enum store_status status,
			const char *const *items, const size_t *lens, size_t n)
{
	struct attempts *a = arg;
	size_t i;

	a->done = 1;
	a->status = status;
	for (i = 0; i < n && i < MAX_ITEMS; i++)
		a->item[i] = strndup(items[i], lens[i]);
	a->n = i;
}

struct counts {
	int done;
	enum store_status status;
	int64_t retries, notices;
};

static void on_counts(void *arg, enum store_status status, int64_t retries,
		      int64_t notices)
{
	struct counts *c = arg;

	c->done = 1;
	c->status = status;
	c->retries = retries;
	c->notices = notices;
}

/* Every result struct starts with its done flag (itest_wait_done). */
static void wait_done(void *r)
{
	itest_wait_done(base, r, 8000);
}

/* ---- changes published (seen by the second store) ---- */

struct changes {
	int webhook;         /* STORE_CHANGE_WEBHOOK messages */
	char last_id[64];
	int64_t last_version;
};

static struct changes seen_b;

static void on_change(void *arg, const struct store_change *ch)
{
	struct changes *c = arg;

	if (ch->kind != STORE_CHANGE_WEBHOOK)
		return;
	c->webhook++;
	snprintf(c->last_id, sizeof(c->last_id), "%s", ch->id);
	c->last_version = ch->version;
}

struct change_wait {
	const char *id;
	int64_t version;
};

static int change_seen(void *arg)
{
	struct change_wait *w = arg;

	return strcmp(seen_b.last_id, w->id) == 0 && seen_b.last_version == w->version;
}

/* ---- fixtures ---- */

static void create_webhook(const char *id, const char *company, const char *target)
{
	struct webhook_error err;
	struct webhook wh;
	struct wres r;
	char body[512];

	webhook_init(&wh);
	wh.id = strdup(id);
	wh.company_id = strdup(company);
	snprintf(body, sizeof(body),
		 "{\"event\":\"Promotion.Created\",\"target\":\"%s\",\"secret\":\"" SECRET "\"}",
		 target);
	if (webhook_apply_json(&wh, WEBHOOK_CREATE, body, strlen(body), T0 - 60000,
			       NULL, &err) < 0) {
		fprintf(stderr, "bad test webhook: %s %s\n", err.field, err.message);
		exit(1);
	}
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_webhook_create(sa, &wh, on_write, &r), 0);
	wait_done(&r);
	CHECK_INT(r.status, STORE_OK);
	webhook_release(&wh);
}

static void put_email(const char *company, const char *email)
{
	struct company_settings s;
	struct wres r;

	s.notification_email = (char *)(uintptr_t)email;
	s.payload_type = PAYLOAD_JSON;
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_settings_put(sa, company, &s, on_write, &r), 0);
	wait_done(&r);
	CHECK_INT(r.status, STORE_OK);
}

static void failure_init(struct store_failure *f, const char *id, int64_t at,
			 long status, const char *error)
{
	memset(f, 0, sizeof(*f));
	f->attempt.webhook_id = id;
	f->attempt.event_id = "evt-1";
	f->attempt.attempt = 1;
	f->attempt.at_ms = at;
	f->attempt.status = status;
	f->attempt.error = error;
	f->attempt.duration_ms = 42;
	f->window_ms = WINDOW_MS;
	f->threshold = THRESHOLD;
}

/* Records a failure through store st and waits for the answer. */
static enum store_failure_result fail_on(struct store *st, const struct store_failure *f)
{
	struct fres r;

	memset(&r, 0, sizeof(r));
	CHECK_INT(store_record_failure(st, f, on_failure, &r), 0);
	CHECK_INT(r.done, 0); /* never called back from inside the call */
	wait_done(&r);
	CHECK_INT(r.status, STORE_OK);
	return r.result;
}

static enum store_failure_result fail_at(const char *id, int64_t at, long status,
					 const char *error)
{
	struct store_failure f;

	failure_init(&f, id, at, status, error);
	return fail_on(sa, &f);
}

static long long raw_int(const char *fmt, const char *arg)
{
	redisReply *rr = itest_cmd(raw, fmt, arg);
	long long v = rr->type == REDIS_REPLY_INTEGER ? rr->integer : -1;

	if (rr->type == REDIS_REPLY_STRING)
		v = strtoll(rr->str, NULL, 10);
	else if (rr->type == REDIS_REPLY_NIL)
		v = 0;
	freeReplyObject(rr);
	return v;
}

static long long version_now(void)
{
	return raw_int("GET %s", "{pw}:version");
}

/* The stored document of webhook id, parsed as every reader parses it. */
static int stored_webhook(const char *id, struct webhook *wh, char **doc)
{
	redisReply *rr = itest_cmd(raw, "HGET {pw}:webhooks %s", id);
	int rc = -1;

	webhook_init(wh);
	if (rr->type == REDIS_REPLY_STRING) {
		rc = webhook_from_storage(wh, rr->str, rr->len);
		if (doc)
			*doc = strdup(rr->str);
	}
	freeReplyObject(rr);
	return rc;
}

static struct counts get_counts(void)
{
	struct counts c;

	memset(&c, 0, sizeof(c));
	CHECK_INT(store_counts(sa, on_counts, &c), 0);
	wait_done(&c);
	CHECK_INT(c.status, STORE_OK);
	return c;
}

static void claim_retries(struct claimed *c, int64_t now, int64_t lease)
{
	claimed_reset(c);
	CHECK_INT(store_retry_claim(sa, now, lease, 50, on_claim, c), 0);
	wait_done(c);
	CHECK_INT(c->status, STORE_OK);
}

static void claim_outbox(struct claimed *c, int64_t now, int64_t lease)
{
	claimed_reset(c);
	CHECK_INT(store_outbox_claim(sa, now, lease, 100, on_claim, c), 0);
	wait_done(c);
	CHECK_INT(c->status, STORE_OK);
}

static void list_attempts(struct attempts *a, const char *id)
{
	attempts_reset(a);
	CHECK_INT(store_attempts_list(sa, id, on_attempts, a), 0);
	wait_done(a);
	CHECK_INT(a->status, STORE_OK);
}

/* How many notices of webhook id are stored. */
static int notices_of(const char *id)
{
	redisReply *rr = itest_cmd(raw, "HKEYS {pw}:notices");
	size_t i, len = strlen(id);
	int n = 0;

	for (i = 0; i < rr->elements; i++) {
		if (strncmp(rr->element[i]->str, id, len) == 0 &&
		    rr->element[i]->str[len] == ':')
			n++;
	}
	freeReplyObject(rr);
	return n;
}

/* ---- JSON helpers ---- */

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

static const char *jstring(yajl_val obj, const char *name)
{
	yajl_val v = jfield(obj, name);

	return v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

static long long jint(yajl_val obj, const char *name)
{
	yajl_val v = jfield(obj, name);

	return v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : -999;
}

static int jnull(yajl_val obj, const char *name)
{
	yajl_val v = jfield(obj, name);

	return v && YAJL_IS_NULL(v);
}

/* ---- tests ---- */

/* Threshold 3 in 5 s: two failures count, the third disables (once, seen
 * by the other store, a notice with every failure), the fourth is only
 * logged. */
static void test_disable(void)
{
	const char *id = "a0000000000000000000000000000001";
	struct change_wait cw;
	struct claimed c;
	struct attempts at;
	struct webhook wh;
	struct counts n0, n1;
	long long v0, v1;
	char *doc = NULL;
	yajl_val notice, failures, f;
	struct buf msg;
	char rerr[128];
	char ts[32];

	memset(&c, 0, sizeof(c));
	memset(&at, 0, sizeof(at));
	create_webhook(id, COMPANY, "https://hooks.acme.example/f");
	put_email(COMPANY, EMAIL);
	n0 = get_counts();

	CHECK_INT(fail_at(id, T0, 500, NULL), STORE_FAILURE_COUNTED);
	CHECK_INT(fail_at(id, T0 + 1000, 0, "timeout after 10000 ms"), STORE_FAILURE_COUNTED);
	CHECK_INT(stored_webhook(id, &wh, NULL), 0);
	CHECK_INT(wh.enabled, 1);
	CHECK_INT(wh.revision, 1);
	webhook_release(&wh);
	CHECK_INT(raw_int("ZCARD {pw}:failures:%s", id), 2);
	{
		long long ttl = raw_int("PTTL {pw}:failures:%s", id);

		CHECK(ttl > 0 && ttl <= WINDOW_MS);
	}

	v0 = version_now();
	CHECK_INT(fail_at(id, T0 + 2000, 503, "HTTP 503"), STORE_FAILURE_DISABLED);
	v1 = version_now();
	CHECK_INT(v1, v0 + 1);
	/* the other replica hears of it */
	cw.id = id;
	cw.version = v1;
	CHECK(itest_run_until(base, change_seen, &cw, 2000) >= 0);

	/* the rewritten document reads like any other */
	CHECK_INT(stored_webhook(id, &wh, &doc), 0);
	CHECK_INT(wh.enabled, 0);
	CHECK_INT(wh.disabled_at_ms, T0 + 2000);
	CHECK_STR(wh.disabled_reason, "3 failed deliveries within 5 s");
	CHECK_INT(wh.revision, 2);
	CHECK_STR(wh.target, "https://hooks.acme.example/f");
	CHECK_STR(wh.secret, SECRET);
	CHECK_STR(wh.company_id, COMPANY);
	CHECK_INT(wh.event, EVENT_PROMOTION_CREATED);
	CHECK_INT(wh.created_at_ms, T0 - 60000);
	CHECK_INT(wh.updated_at_ms, T0 + 2000);
	CHECK(doc && strstr(doc, "\\/") == NULL); /* no cjson "\/" escapes */
	free(doc);
	webhook_release(&wh);

	/* one notice, with the contract's fields */
	n1 = get_counts();
	CHECK_INT(n1.notices, n0.notices + 1);
	CHECK_INT(notices_of(id), 1);
	claim_outbox(&c, T0 + 2000, 30000);
	CHECK_INT(c.n, 1);
	if (c.n == 1) {
		CHECK_STR(c.key[0], id);
		CHECK(strncmp(c.id[0], id, strlen(id)) == 0);
		/* the outbox keeps the fields; the relay renders the message */
		buf_init(&msg, (size_t)1 << 20);
		CHECK_INT(notice_render(c.payload[0], strlen(c.payload[0]), &msg, rerr,
					sizeof(rerr)), 0);
		CHECK(strstr(buf_str(&msg), "\\/") == NULL);
		notice = jparse(buf_str(&msg));
		buf_release(&msg);
		CHECK(notice != NULL);
		if (notice) {
			CHECK_STR(jstring(notice, "type"), "WebhookDisabled");
			CHECK_STR(jstring(notice, "to"), EMAIL);
			CHECK_STR(jstring(notice, "subject"),
				  "Webhook disabled: Promotion.Created -> https://hooks.acme.example/f");
			CHECK(jstring(notice, "text") != NULL &&
			      strstr(jstring(notice, "text"), "3 failed deliveries within 5 s") &&
			      strstr(jstring(notice, "text"), "enable"));
			fprintf(stderr, "  notice text: %s\n", jstring(notice, "text"));
			CHECK_STR(jstring(notice, "companyId"), COMPANY);
			CHECK_STR(jstring(notice, "webhookId"), id);
			CHECK_STR(jstring(notice, "event"), "Promotion.Created");
			CHECK_STR(jstring(notice, "target"), "https://hooks.acme.example/f");
			rfc3339_format(T0 + 2000, ts, sizeof(ts));
			CHECK_STR(jstring(notice, "disabledAt"), ts);
			failures = jfield(notice, "failures");
			CHECK(failures && YAJL_IS_ARRAY(failures) && failures->u.array.len == 3);
			if (failures && YAJL_IS_ARRAY(failures) && failures->u.array.len == 3) {
				/* oldest first, {at, status, error} each */
				f = failures->u.array.values[0];
				CHECK_STR(jstring(f, "at"), T0_TEXT);
				CHECK_INT(jint(f, "status"), 500);
				CHECK(jnull(f, "error"));
				CHECK(jfield(f, "id") == NULL);
				f = failures->u.array.values[1];
				CHECK(jnull(f, "status"));
				CHECK_STR(jstring(f, "error"), "timeout after 10000 ms");
				f = failures->u.array.values[2];
				CHECK_INT(jint(f, "status"), 503);
				CHECK_STR(jstring(f, "error"), "HTTP 503");
			}
			yajl_tree_free(notice);
		}
	}

	/* a fourth failure: logged only; no second disable, no notice */
	v0 = version_now();
	CHECK_INT(fail_at(id, T0 + 3000, 500, NULL), STORE_FAILURE_INACTIVE);
	CHECK_INT(version_now(), v0);
	CHECK_INT(notices_of(id), 1);

	/* the attempt log: newest first, the contract's fields */
	list_attempts(&at, id);
	CHECK_INT(at.n, 4);
	if (at.n == 4) {
		yajl_val e = jparse(at.item[0]);

		CHECK(e != NULL);
		if (e) {
			rfc3339_format(T0 + 3000, ts, sizeof(ts));
			CHECK_STR(jstring(e, "at"), ts);
			CHECK_STR(jstring(e, "eventId"), "evt-1");
			CHECK_INT(jint(e, "attempt"), 1);
			CHECK_INT(jint(e, "status"), 500);
			CHECK(jnull(e, "error"));
			CHECK_INT(jint(e, "durationMs"), 42);
			yajl_tree_free(e);
		}
		e = jparse(at.item[2]);
		CHECK(e != NULL);
		if (e) {
			CHECK(jnull(e, "status"));
			CHECK_STR(jstring(e, "error"), "timeout after 10000 ms");
			yajl_tree_free(e);
		}
		e = jparse(at.item[3]);
		if (e) {
			CHECK_STR(jstring(e, "at"), T0_TEXT);
			yajl_tree_free(e);
		}
	}

	/* enabling again clears the failure history: it takes 3 more */
	{
		struct wres r;

		CHECK_INT(stored_webhook(id, &wh, NULL), 0);
		wh.enabled = 1;
		wh.disabled_at_ms = 0;
		free(wh.disabled_reason);
		wh.disabled_reason = NULL;
		memset(&r, 0, sizeof(r));
		CHECK_INT(store_webhook_replace(sa, &wh, 1, on_write, &r), 0);
		wait_done(&r);
		CHECK_INT(r.status, STORE_OK);
		webhook_release(&wh);
	}
	CHECK_INT(fail_at(id, T0 + 4000, 500, NULL), STORE_FAILURE_COUNTED);
	CHECK_INT(fail_at(id, T0 + 4001, 500, NULL), STORE_FAILURE_COUNTED);
	CHECK_INT(fail_at(id, T0 + 4002, 500, NULL), STORE_FAILURE_DISABLED);
	CHECK_INT(notices_of(id), 2);

	claimed_reset(&c);
	attempts_reset(&at);
}

/* "Within the last window": a failure exactly one window old has left it. */
static void test_window(void)
{
	const char *id = "a0000000000000000000000000000002";

	create_webhook(id, COMPANY, "https://hooks.acme.example/w");
	CHECK_INT(fail_at(id, T0, 500, NULL), STORE_FAILURE_COUNTED);
	CHECK_INT(fail_at(id, T0 + 1000, 500, NULL), STORE_FAILURE_COUNTED);
	/* past the window: both earlier ones are trimmed */
	CHECK_INT(fail_at(id, T0 + 1000 + WINDOW_MS + 1, 500, NULL), STORE_FAILURE_COUNTED);
	CHECK_INT(raw_int("ZCARD {pw}:failures:%s", id), 1);
	/* the boundary: at T, T+4999, T+5000 the first is out (2 left)... */
	{
		int64_t t = T0 + 20000;

		CHECK_INT(fail_at(id, t, 500, NULL), STORE_FAILURE_COUNTED);
		CHECK_INT(raw_int("ZCARD {pw}:failures:%s", id), 1);
		CHECK_INT(fail_at(id, t + WINDOW_MS - 1, 500, NULL), STORE_FAILURE_COUNTED);
		CHECK_INT(fail_at(id, t + WINDOW_MS, 500, NULL), STORE_FAILURE_COUNTED);
		CHECK_INT(raw_int("ZCARD {pw}:failures:%s", id), 2);
		/* ...and T+4999, T+5000, T+5001 are three within 5 s */
		CHECK_INT(fail_at(id, t + WINDOW_MS + 1, 500, NULL), STORE_FAILURE_DISABLED);
	}
}

/* A company without a notification email: disabled, no notice. */
static void test_no_email(void)
{
	const char *id = "a0000000000000000000000000000003";
	struct counts n0, n1;

	create_webhook(id, "quiet-co", "https://quiet.example/");
	n0 = get_counts();
	CHECK_INT(fail_at(id, T0, 500, NULL), STORE_FAILURE_COUNTED);
	CHECK_INT(fail_at(id, T0 + 1, 500, NULL), STORE_FAILURE_COUNTED);
	CHECK_INT(fail_at(id, T0 + 2, 500, NULL), STORE_FAILURE_DISABLED);
	n1 = get_counts();
	CHECK_INT(n1.notices, n0.notices);
	CHECK_INT(notices_of(id), 0);
	/* an email set to null counts as none too */
	put_email("quiet-co", NULL);
	{
		const char *id2 = "a0000000000000000000000000000013";

		create_webhook(id2, "quiet-co", "https://quiet.example/2");
		CHECK_INT(fail_at(id2, T0, 500, NULL), STORE_FAILURE_COUNTED);
		CHECK_INT(fail_at(id2, T0, 500, NULL), STORE_FAILURE_COUNTED);
		CHECK_INT(fail_at(id2, T0, 500, NULL), STORE_FAILURE_DISABLED);
		CHECK_INT(notices_of(id2), 0);
	}
}

/* Failures in one millisecond are as many failures. */
static void test_same_ms(void)
{
	const char *id = "a0000000000000000000000000000004";
	struct store_failure f;

	create_webhook(id, COMPANY, "https://hooks.acme.example/ms");
	failure_init(&f, id, T0, 500, NULL);
	f.threshold = 2;
	CHECK_INT(fail_on(sa, &f), STORE_FAILURE_COUNTED);
	CHECK_INT(fail_on(sa, &f), STORE_FAILURE_DISABLED);
	CHECK_INT(raw_int("ZCARD {pw}:failures:%s", id), 2);
}

/* Two replicas racing on one webhook: one disable, one notice. */
static void test_race(void)
{
	const char *id = "a0000000000000000000000000000005";
	struct store_failure f[20];
	struct fres r[20];
	int i, counted = 0, disabled = 0, inactive = 0;
	long long v0;

	create_webhook(id, COMPANY, "https://hooks.acme.example/race");
	v0 = version_now();
	memset(r, 0, sizeof(r));
	/* all started before the loop runs: the two connections interleave */
	for (i = 0; i < 20; i++) {
		failure_init(&f[i], id, T0 + i / 2, 500, NULL);
		f[i].attempt.attempt = i + 1;
		CHECK_INT(store_record_failure(i % 2 ? sb : sa, &f[i], on_failure, &r[i]), 0);
	}
	for (i = 0; i < 20; i++) {
		wait_done(&r[i]);
		CHECK_INT(r[i].status, STORE_OK);
		counted += r[i].result == STORE_FAILURE_COUNTED;
		disabled += r[i].result == STORE_FAILURE_DISABLED;
		inactive += r[i].result == STORE_FAILURE_INACTIVE;
	}
	fprintf(stderr, "  race: counted=%d disabled=%d inactive=%d\n", counted,
		disabled, inactive);
	CHECK_INT(disabled, 1);
	CHECK_INT(counted, THRESHOLD - 1);
	CHECK_INT(inactive, 20 - THRESHOLD);
	CHECK_INT(notices_of(id), 1);
	CHECK_INT(version_now(), v0 + 1);
	CHECK_INT(raw_int("LLEN {pw}:attempts:%s", id), 20);
}

/* Retries: pending until due, claimed once per lease, removed by the
 * attempt that finishes them, dropped for disabled or deleted webhooks. */
static void test_retries(void)
{
	const char *id = "a0000000000000000000000000000006";
	const char *gone = "a0000000000000000000000000000007";
	const char *off = "a0000000000000000000000000000008";
	char job[256], rid[256], tok1[32], tok2[32];
	struct store_failure f;
	struct claimed c;
	struct counts n;
	struct wres w;
	int64_t due = T0 + 60000;

	memset(&c, 0, sizeof(c));
	create_webhook(id, COMPANY, "https://hooks.acme.example/r");
	n = get_counts();
	CHECK_INT(n.retries, 0);
	snprintf(job, sizeof(job), "{\"webhookId\":\"%s\",\"eventId\":\"evt-9\",\"attempt\":2}", id);
	failure_init(&f, id, T0, 500, NULL);
	f.threshold = 10;
	f.next_job = job;
	f.next_due_ms = due;
	CHECK_INT(fail_on(sa, &f), STORE_FAILURE_COUNTED);
	n = get_counts();
	CHECK_INT(n.retries, 1);

	claim_retries(&c, due - 1, 30000);
	CHECK_INT(c.n, 0); /* not yet due */
	claim_retries(&c, due, 30000);
	CHECK_INT(c.n, 1);
	if (c.n != 1)
		return;
	CHECK_STR(c.payload[0], job);
	CHECK(c.key[0] != NULL); /* the claim's token */
	CHECK(strncmp(c.id[0], id, strlen(id)) == 0);
	snprintf(rid, sizeof(rid), "%s", c.id[0]);
	snprintf(tok1, sizeof(tok1), "%s", c.key[0] ? c.key[0] : "");
	claim_retries(&c, due + 1, 30000);
	CHECK_INT(c.n, 0); /* leased */
	/* a second replica neither */
	claimed_reset(&c);
	CHECK_INT(store_retry_claim(sb, due + 29999, 30000, 10, on_claim, &c), 0);
	wait_done(&c);
	CHECK_INT(c.n, 0);
	/* the holder died: after the lease it is claimable again */
	claim_retries(&c, due + 30000, 30000);
	CHECK_INT(c.n, 1);
	CHECK(c.n == 1 && strcmp(c.id[0], rid) == 0);
	snprintf(tok2, sizeof(tok2), "%s", c.n == 1 && c.key[0] ? c.key[0] : "");
	CHECK(strcmp(tok1, tok2) != 0);

	/* Issue 12 part 2: the first holder's outcome arrives late, under
	 * its stale claim: nothing is counted toward the rule, the retry
	 * stays, no second chain is scheduled. */
	{
		long long failures = raw_int("ZCARD {pw}:failures:%s", id);
		long long jobs = raw_int("HLEN {pw}:retry-jobs%s", "");

		failure_init(&f, id, due + 30000, 503, NULL);
		f.attempt.attempt = 2;
		f.threshold = 10;
		f.retry_id = rid;
		f.retry_token = tok1;
		f.next_job = job;
		f.next_due_ms = due + 600000;
		f.attempt_id = "msg_x:2:retried";
		CHECK_INT(fail_on(sa, &f), STORE_FAILURE_STALE);
		/* a stale send leaves no duplicate mark: the same attempt
		 * sent again under the newer claim (this replica claimed it
		 * again while the send was on its way) is recorded below */
		CHECK_INT(raw_int("EXISTS {pw}:recorded:%s", "msg_x:2:retried"), 0);
		CHECK_INT(raw_int("ZCARD {pw}:failures:%s", id), failures);
		CHECK_INT(raw_int("HLEN {pw}:retry-jobs%s", ""), jobs);
		CHECK_INT(raw_int("HEXISTS {pw}:retry-jobs %s", rid), 1);
		/* a renewal under the stale token changes nothing; under the
		 * current one it moves the lease */
		memset(&w, 0, sizeof(w));
		CHECK_INT(store_retry_renew(sa, rid, tok1, due + 99999, on_write, &w), 0);
		wait_done(&w);
		CHECK_INT(w.status, STORE_OK);
		CHECK_INT(w.version, 0);
		CHECK_INT(raw_int("ZSCORE {pw}:retries %s", rid), due + 60000);
		memset(&w, 0, sizeof(w));
		CHECK_INT(store_retry_renew(sa, rid, tok2, due + 99999, on_write, &w), 0);
		wait_done(&w);
		CHECK_INT(w.version, 1);
		CHECK_INT(raw_int("ZSCORE {pw}:retries %s", rid), due + 99999);
	}

	/* the same attempt, sent again under the current claim, is counted
	 * and schedules the next retry in the same step */
	failure_init(&f, id, due + 30000, 502, NULL);
	f.attempt.attempt = 2;
	f.threshold = 10;
	f.retry_id = rid;
	f.retry_token = tok2;
	f.next_job = job;
	f.next_due_ms = due + 600000;
	f.attempt_id = "msg_x:2:retried";
	CHECK_INT(fail_on(sa, &f), STORE_FAILURE_COUNTED);
	CHECK_INT(raw_int("HEXISTS {pw}:retry-jobs %s", rid), 0);
	CHECK_INT(raw_int("ZSCORE {pw}:retries %s", rid), 0);
	n = get_counts();
	CHECK_INT(n.retries, 1);
	claim_retries(&c, due + 600000, 30000);
	CHECK_INT(c.n, 1);
	if (c.n == 1) {
		snprintf(rid, sizeof(rid), "%s", c.id[0]);
		snprintf(tok1, sizeof(tok1), "%s", c.key[0] ? c.key[0] : "");
	}

	/* and succeeds: gone */
	{
		struct store_attempt a;

		memset(&a, 0, sizeof(a));
		a.webhook_id = id;
		a.event_id = "evt-9";
		a.attempt = 3;
		a.at_ms = due + 600000;
		a.status = 200;
		a.duration_ms = 7;
		/* under a token that is not the claim's: nothing changes */
		memset(&w, 0, sizeof(w));
		CHECK_INT(store_record_success(sa, &a, rid, "0", on_write, &w), 0);
		wait_done(&w);
		CHECK_INT(w.status, STORE_OK);
		CHECK_INT(w.version, 0);
		CHECK_INT(raw_int("HEXISTS {pw}:retry-jobs %s", rid), 1);
		memset(&w, 0, sizeof(w));
		CHECK_INT(store_record_success(sa, &a, rid, tok1, on_write, &w), 0);
		wait_done(&w);
		CHECK_INT(w.status, STORE_OK);
		CHECK_INT(w.version, 1);
	}
	n = get_counts();
	CHECK_INT(n.retries, 0);
	CHECK_INT(raw_int("HLEN {pw}:retry-jobs%s", ""), 0);
	CHECK_INT(raw_int("LLEN {pw}:attempts:%s", id), 3);

	/* a disabling failure schedules no retry */
	failure_init(&f, id, T0, 500, NULL);
	f.threshold = 1;
	f.next_job = job;
	f.next_due_ms = due;
	CHECK_INT(fail_on(sa, &f), STORE_FAILURE_DISABLED);
	/* nor does one of a disabled webhook */
	CHECK_INT(fail_on(sa, &f), STORE_FAILURE_INACTIVE);
	n = get_counts();
	CHECK_INT(n.retries, 0);

	/* retries of webhooks deleted or disabled meanwhile are dropped */
	create_webhook(gone, COMPANY, "https://hooks.acme.example/gone");
	create_webhook(off, COMPANY, "https://hooks.acme.example/off");
	failure_init(&f, gone, T0, 500, NULL);
	f.threshold = 10;
	f.next_job = job;
	f.next_due_ms = due;
	CHECK_INT(fail_on(sa, &f), STORE_FAILURE_COUNTED);
	f.attempt.webhook_id = off;
	CHECK_INT(fail_on(sa, &f), STORE_FAILURE_COUNTED);
	n = get_counts();
	CHECK_INT(n.retries, 2);
	memset(&w, 0, sizeof(w));
	CHECK_INT(store_webhook_delete(sa, COMPANY, gone, on_write, &w), 0);
	wait_done(&w);
	CHECK_INT(w.status, STORE_OK);
	{
		struct webhook wh;

		CHECK_INT(stored_webhook(off, &wh, NULL), 0);
		wh.enabled = 0;
		wh.disabled_at_ms = T0;
		memset(&w, 0, sizeof(w));
		CHECK_INT(store_webhook_replace(sa, &wh, 0, on_write, &w), 0);
		wait_done(&w);
		CHECK_INT(w.status, STORE_OK);
		webhook_release(&wh);
	}
	claim_retries(&c, due, 30000);
	CHECK_INT(c.n, 0);
	n = get_counts();
	CHECK_INT(n.retries, 0);
	CHECK_INT(raw_int("HLEN {pw}:retry-jobs%s", ""), 0);
	/* and a deleted webhook's failure leaves nothing behind */
	failure_init(&f, gone, T0, 500, NULL);
	f.next_job = job;
	f.next_due_ms = due;
	CHECK_INT(fail_on(sa, &f), STORE_FAILURE_INACTIVE);
	CHECK_INT(raw_int("EXISTS {pw}:attempts:%s", gone), 0);
	CHECK_INT(raw_int("EXISTS {pw}:failures:%s", gone), 0);
	n = get_counts();
	CHECK_INT(n.retries, 0);
	claimed_reset(&c);
}

/* The outbox: claimed under a lease, claimable again after it, gone once
 * acknowledged. */
static void test_outbox(void)
{
	struct claimed c, again;
	struct counts n;
	struct wres w;
	size_t i, total;
	int64_t now = T0 + 3600000;

	memset(&c, 0, sizeof(c));
	memset(&again, 0, sizeof(again));
	n = get_counts();
	CHECK(n.notices >= 3); /* from the tests above */
	claim_outbox(&c, now, 30000);
	total = c.n;
	CHECK_INT(total, n.notices);
	for (i = 0; i < c.n; i++) {
		yajl_val v = jparse(c.payload[i]);

		CHECK(v != NULL);
		CHECK(c.key[i] != NULL && v && jstring(v, "webhookId") &&
		      strcmp(c.key[i], jstring(v, "webhookId")) == 0);
		yajl_tree_free(v);
	}
	claim_outbox(&again, now + 29999, 30000);
	CHECK_INT(again.n, 0);
	claim_outbox(&again, now + 30000, 30000);
	CHECK_INT(again.n, total);
	/* a limit is a limit */
	claimed_reset(&again);
	CHECK_INT(store_outbox_claim(sa, now + 90000, 30000, 1, on_claim, &again), 0);
	wait_done(&again);
	CHECK_INT(again.n, 1);
	for (i = 0; i < c.n; i++) {
		memset(&w, 0, sizeof(w));
		CHECK_INT(store_outbox_ack(sa, c.id[i], on_write, &w), 0);
		wait_done(&w);
		CHECK_INT(w.status, STORE_OK);
	}
	/* acknowledging twice is harmless */
	if (c.n > 0) {
		memset(&w, 0, sizeof(w));
		CHECK_INT(store_outbox_ack(sa, c.id[0], on_write, &w), 0);
		wait_done(&w);
		CHECK_INT(w.status, STORE_OK);
	}
	n = get_counts();
	CHECK_INT(n.notices, 0);
	CHECK_INT(raw_int("HLEN {pw}:notices%s", ""), 0);
	claim_outbox(&again, now + 999999999, 30000);
	CHECK_INT(again.n, 0);
	claimed_reset(&c);
	claimed_reset(&again);
}

static int attempt_of(const char *item)
{
	yajl_val v = jparse(item);
	int n = v ? (int)jint(v, "attempt") : -1;

	yajl_tree_free(v);
	return n;
}

/* The attempt log: newest first, at most 100; batches for successes; gone
 * with the webhook; nothing for unknown webhooks. */
static void test_attempt_log(void)
{
	const char *id = "a0000000000000000000000000000009";
	struct store_attempt a[110];
	struct attempts at;
	struct wres w;
	int i, ok = 1;

	memset(&at, 0, sizeof(at));
	create_webhook(id, COMPANY, "https://hooks.acme.example/log");
	memset(a, 0, sizeof(a));
	for (i = 0; i < 110; i++) {
		a[i].webhook_id = id;
		a[i].event_id = "evt-log";
		a[i].attempt = i + 1; /* the order marker */
		a[i].at_ms = T0 + i;
		a[i].status = 204;
		a[i].duration_ms = i;
	}
	/* one call, one batch of 104, then 6 one by one; an unknown webhook
	 * in the batch is skipped */
	a[50].webhook_id = "ffffffffffffffffffffffffffffffff";
	store_log_attempts(sa, a, 104);
	for (i = 104; i < 110; i++)
		store_log_attempts(sa, &a[i], 1);
	list_attempts(&at, id);
	CHECK_INT(at.n, 100);
	for (i = 0; i < (int)at.n; i++) {
		if (attempt_of(at.item[i]) != 110 - i - (i >= 59 ? 1 : 0))
			ok = 0;
	}
	CHECK(ok);
	if (at.n > 0) {
		yajl_val v = jparse(at.item[0]);
		char ts[32];

		rfc3339_format(T0 + 109, ts, sizeof(ts));
		CHECK(v != NULL);
		if (v) {
			CHECK_STR(jstring(v, "at"), ts);
			CHECK_INT(jint(v, "status"), 204);
			CHECK(jnull(v, "error"));
			CHECK_INT(jint(v, "durationMs"), 109);
		}
		yajl_tree_free(v);
	}
	CHECK_INT(raw_int("EXISTS {pw}:attempts:%s", "ffffffffffffffffffffffffffffffff"), 0);
	{
		long long ttl = raw_int("PTTL {pw}:attempts:%s", id);

		CHECK(ttl > 29LL * 86400 * 1000);
	}
	/* more than one batch in one call */
	{
		static struct store_attempt many[600];

		for (i = 0; i < 600; i++) {
			many[i] = a[0];
			many[i].attempt = 1000 + i;
		}
		store_log_attempts(sa, many, 600);
		list_attempts(&at, id);
		CHECK_INT(at.n, 100);
		CHECK(at.n > 0 && attempt_of(at.item[0]) == 1599);
		CHECK(at.n > 99 && attempt_of(at.item[99]) == 1500);
	}

	/* coalesced per webhook: two busy webhooks interleaved in one call
	 * (more than one EVALSHA), each log gets its newest 100 in order */
	{
		const char *id2 = "a000000000000000000000000000000a";
		static struct store_attempt mixed[700];
		struct attempts at2;
		int ok2 = 1;

		memset(&at2, 0, sizeof(at2));
		create_webhook(id2, COMPANY, "https://hooks.acme.example/log2");
		for (i = 0; i < 700; i++) {
			mixed[i] = a[0];
			mixed[i].webhook_id = i % 3 == 0 ? id2 : id;
			mixed[i].attempt = 2000 + i;
		}
		store_log_attempts(sa, mixed, 700);
		list_attempts(&at, id);
		list_attempts(&at2, id2);
		CHECK_INT(at.n, 100);
		CHECK_INT(at2.n, 100);
		/* id: the i with i % 3 != 0, newest first: 698, 697, 695, ... */
		for (i = 0; i < (int)at.n; i++) {
			int want = 698 - i - i / 2;

			if (attempt_of(at.item[i]) != 2000 + want)
				ok2 = 0;
		}
		for (i = 0; i < (int)at2.n; i++)
			if (attempt_of(at2.item[i]) != 2000 + 699 - 3 * i)
				ok2 = 0;
		CHECK(ok2);
		attempts_reset(&at2);
	}

	/* a success for an unknown webhook logs nothing */
	{
		struct store_attempt s = a[0];

		s.webhook_id = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
		memset(&w, 0, sizeof(w));
		CHECK_INT(store_record_success(sa, &s, NULL, NULL, on_write, &w), 0);
		wait_done(&w);
		CHECK_INT(w.status, STORE_OK);
		CHECK_INT(raw_int("EXISTS {pw}:attempts:%s", s.webhook_id), 0);
		list_attempts(&at, s.webhook_id);
		CHECK_INT(at.n, 0);
	}

	/* the script cache flushed: the next batch is lost at most, the one
	 * after it is kept, and the other scripts fall back to EVAL */
	itest_cmd_ok(raw, "SCRIPT FLUSH");
	a[0].attempt = 7001;
	store_log_attempts(sa, a, 1);
	list_attempts(&at, id);
	a[0].attempt = 7002;
	store_log_attempts(sa, a, 1);
	list_attempts(&at, id);
	CHECK(at.n > 0 && attempt_of(at.item[0]) == 7002);
	a[0].attempt = 7003;
	store_log_attempts(sa, a, 1);
	list_attempts(&at, id);
	CHECK(at.n > 0 && attempt_of(at.item[0]) == 7003);
	itest_cmd_ok(raw, "SCRIPT FLUSH");
	CHECK_INT(fail_at(id, T0, 500, NULL), STORE_FAILURE_COUNTED);

	/* deleting the webhook deletes its log */
	memset(&w, 0, sizeof(w));
	CHECK_INT(store_webhook_delete(sa, COMPANY, id, on_write, &w), 0);
	wait_done(&w);
	CHECK_INT(w.status, STORE_OK);
	CHECK_INT(raw_int("EXISTS {pw}:attempts:%s", id), 0);
	CHECK_INT(raw_int("EXISTS {pw}:failures:%s", id), 0);
	attempts_reset(&at);
}

/* Without Redis: log_attempts drops at once, the others fail quickly. */
static void test_unreachable(void)
{
	struct config bad = cfg;
	struct store_attempt a;
	struct store_failure f;
	struct store *st;
	struct fres r;
	char err[128];

	bad.redis_port = 1; /* nothing listens there */
	st = store_new(base, &bad, err, sizeof(err));
	CHECK(st != NULL);
	if (!st)
		return;
	memset(&a, 0, sizeof(a));
	a.webhook_id = "a0000000000000000000000000000001";
	a.at_ms = T0;
	store_log_attempts(st, &a, 1);
	failure_init(&f, a.webhook_id, T0, 500, NULL);
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_record_failure(st, &f, on_failure, &r), 0);
	CHECK(itest_run_until(base, itest_is_done, &r, 8000) >= 0);
	CHECK_INT(r.status, STORE_UNAVAILABLE);
	store_free(st);
}

static int stores_ready(void *arg)
{
	return store_is_ready(sa) && store_is_ready(sb);
}

/* A deferral (a parked delivery) sent again because its answer was lost
 * names the same retry and changes nothing: one retry, and once claimed,
 * not made due again by the second send. */
static void test_defer_again(void)
{
	const char *id = "a0000000000000000000000000000019";
	const char *job = "{\"webhookId\":\"a0000000000000000000000000000019\",\"eventId\":\"evt-p\",\"attempt\":1}";
	int64_t due = T0 + 5000;
	long long before = raw_int("HLEN {pw}:retry-jobs%s", "");
	struct claimed c;
	struct wres w;
	int i;

	memset(&c, 0, sizeof(c));
	create_webhook(id, "deferco", "https://hooks.deferco.example/p");
	for (i = 0; i < 2; i++) {
		memset(&w, 0, sizeof(w));
		CHECK_INT(store_retry_defer(sa, id, "park-msg_p-1", job, due, on_write, &w), 0);
		wait_done(&w);
		CHECK_INT(w.status, STORE_OK);
	}
	CHECK_INT(raw_int("HLEN {pw}:retry-jobs%s", ""), before + 1);
	claim_retries(&c, due, 30000);
	CHECK_INT(c.n, 1);
	/* sent a third time while claimed: still leased, not due again */
	memset(&w, 0, sizeof(w));
	CHECK_INT(store_retry_defer(sa, id, "park-msg_p-1", job, due, on_write, &w), 0);
	wait_done(&w);
	claim_retries(&c, due + 1, 30000);
	CHECK_INT(c.n, 0);
	CHECK_INT(raw_int("HLEN {pw}:retry-jobs%s", ""), before + 1);
	/* a deferral needs a name */
	CHECK_INT(store_retry_defer(sa, id, "", job, due, on_write, &w), -1);
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
	store_subscribe(sb, on_change, &seen_b);
	if (itest_run_until(base, stores_ready, NULL, 5000) < 0) {
		fprintf(stderr, "redis not ready\n");
		return 1;
	}

	test_disable();
	test_window();
	test_no_email();
	test_same_ms();
	test_race();
	test_retries();
	test_defer_again();
	test_outbox();
	test_attempt_log();
	test_unreachable();

	store_free(sa);
	store_free(sb);
	redisFree(raw);
	event_base_free(base);
	config_release(&cfg);
	return TEST_DONE();
}
