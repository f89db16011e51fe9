/*
 * Integration test of store.c and registry.c against a real Redis
 * (REDIS_URL): webhook and settings CRUD through the store, the Redis
 * layout behind it, the compare-and-set, and cache invalidation across
 * replicas: two independent store + registry pairs on one Redis, where a
 * change made through one must show in the other within one second,
 * measured on the event loop. Also a change that bypasses pub/sub (found
 * by the version poll), a Lua rewrite like the failure rule's, dropped
 * connections (reconnect and resubscribe), and against a fake server on
 * loopback a Redis that hangs (the watchdog).
 */
#include "promo_webhooks/log.h"
#include "promo_webhooks/match.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/store_outcomes.h"
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/webhook.h"
#include "testutil.h"
#include "itest.h"

#include <signal.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#define TEST_DB 11
#define INCR_HOOKS 3000 /* webhooks of test_incremental */
#define COMPANY "acme"
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static struct event_base *base;
static struct config cfg;
static redisContext *raw;

/* ---- capturing callback results ---- */

struct result {
	int done;
	enum store_status status;
	int64_t version;
	struct webhook wh;
	size_t n;
	char ids[8][WEBHOOK_ID_LEN + 1];
	struct company_settings settings;
};

static void result_reset(struct result *r)
{
	webhook_release(&r->wh);
	company_settings_release(&r->settings);
	memset(r, 0, sizeof(*r));
	webhook_init(&r->wh);
	company_settings_init(&r->settings);
}

static void on_write(void *arg, enum store_status status, int64_t version)
{
	struct result *r = arg;

	r->done = 1;
	r->status = status;
	r->version = version;
}

static void on_webhook(void *arg, enum store_status status, const struct webhook *wh)
{
	struct result *r = arg;

	r->done = 1;
	r->status = status;
	if (wh && webhook_copy(&r->wh, wh) < 0)
		r->status = STORE_ERROR;
}

static void on_list(void *arg, enum store_status status, const struct webhook *hooks,
		    size_t n)
{
	struct result *r = arg;
	size_t i;

	r->done = 1;
	r->status = status;
	r->n = n;
	for (i = 0; i < n && i < 8; i++)
		snprintf(r->ids[i], sizeof(r->ids[i]), "%s", hooks[i].id);
}

static void on_settings(void *arg, enum store_status status,
			const struct company_settings *s)
{
	struct result *r = arg;

	r->done = 1;
	r->status = status;
	if (s && company_settings_copy(&r->settings, s) < 0)
		r->status = STORE_ERROR;
}

static void on_version(void *arg, enum store_status status, int64_t version)
{
	struct result *r = arg;

	r->done = 1;
	r->status = status;
	r->version = version;
}

static int result_done(void *arg)
{
	return ((struct result *)arg)->done;
}

/* Waits for an operation's callback (5 s at most). */
static void wait_result(struct result *r)
{
	if (itest_run_until(base, result_done, r, 8000) < 0) {
		fprintf(stderr, "operation did not complete\n");
		exit(1);
	}
}

/* ---- fixtures ---- */

struct replica {
	struct store *store;
	struct registry *reg;
	int changes; /* registry change callbacks seen */
};

static void on_reg_change(void *arg)
{
	((struct replica *)arg)->changes++;
}

static void replica_start(struct replica *rp)
{
	char err[256];

	memset(rp, 0, sizeof(*rp));
	rp->store = store_new(base, &cfg, err, sizeof(err));
	if (!rp->store) {
		fprintf(stderr, "store_new: %s\n", err);
		exit(1);
	}
	rp->reg = registry_new(base, &cfg, rp->store, err, sizeof(err));
	if (!rp->reg) {
		fprintf(stderr, "registry_new: %s\n", err);
		exit(1);
	}
	registry_set_change_cb(rp->reg, on_reg_change, rp);
}

static void replica_stop(struct replica *rp)
{
	registry_free(rp->reg);
	store_free(rp->store);
}

static int replicas_loaded(void *arg)
{
	struct replica *rp = arg;

	return registry_is_loaded(rp[0].reg) && registry_is_loaded(rp[1].reg) &&
	       store_is_ready(rp[0].store) && store_is_ready(rp[1].store);
}

static void make_webhook(struct webhook *wh, const char *id, const char *company,
			 const char *body)
{
	struct webhook_error err;

	webhook_init(wh);
	wh->id = strdup(id);
	wh->company_id = strdup(company);
	if (webhook_apply_json(wh, WEBHOOK_CREATE, body, strlen(body), 1748856612345LL,
			       NULL, &err) < 0) {
		fprintf(stderr, "bad test webhook: %s %s\n", err.field, err.message);
		exit(1);
	}
}

/* ---- conditions on a replica's cache ---- */

struct seen {
	struct replica *rp;
	const char *id;
	int want_present;   /* 1: present, 0: absent */
	int want_enabled;   /* -1: any */
	const char *target; /* NULL: any */
	const char *email;  /* settings condition when id is NULL */
	const char *company;
};

static int cache_shows(void *arg)
{
	struct seen *s = arg;
	const struct webhook *wh;

	if (!s->id) {
		const struct company_settings *cs = registry_settings(s->rp->reg, s->company);

		return cs->notification_email && strcmp(cs->notification_email, s->email) == 0;
	}
	wh = registry_webhook(s->rp->reg, s->id);
	if (!s->want_present)
		return wh == NULL;
	if (!wh)
		return 0;
	if (s->want_enabled >= 0 && wh->enabled != s->want_enabled)
		return 0;
	return !s->target || strcmp(wh->target, s->target) == 0;
}

static int64_t worst_ms;

/* Checks that the other replica's cache shows the change within 1 s of t0
 * (when the change was started). */
static void expect_seen_within_1s(struct seen *s, int64_t t0, const char *what)
{
	int64_t took = itest_run_until(base, cache_shows, s, 3000);

	if (took >= 0)
		took = itest_now_ms() - t0;
	fprintf(stderr, "  %s: seen by the other replica after %lld ms\n", what,
		(long long)took);
	CHECK(took >= 0);
	CHECK(took < 1000);
	if (took > worst_ms)
		worst_ms = took;
}

/* ---- tests ---- */

static void test_crud(struct replica *rp)
{
	struct result r;
	struct webhook wh, other;
	redisReply *rr;
	int64_t v0;

	memset(&r, 0, sizeof(r));
	result_reset(&r);
	make_webhook(&wh, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1", COMPANY,
		     "{\"event\":\"Promotion.StartingInPeriod\",\"target\":\"https://hooks.acme.example/a\","
		     "\"notificationPeriod\":\"Hours\",\"notificationPeriodValue\":2,\"secret\":\"" SECRET "\"}");
	make_webhook(&other, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2", "globex",
		     "{\"event\":\"Promotion.Created\",\"target\":\"https://globex.example/\"}");

	CHECK_INT(store_version_get(rp->store, on_version, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);
	v0 = r.version;

	/* create */
	result_reset(&r);
	CHECK_INT(store_webhook_create(rp->store, &wh, on_write, &r), 0);
	CHECK_INT(r.done, 0); /* never called back from inside the call */
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);
	CHECK_INT(r.version, v0 + 1);
	result_reset(&r);
	CHECK_INT(store_webhook_create(rp->store, &wh, on_write, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_CONFLICT);
	result_reset(&r);
	CHECK_INT(store_webhook_create(rp->store, &other, on_write, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);

	/* the layout behind it */
	rr = itest_cmd(raw, "SISMEMBER {pw}:company:acme:webhooks %s", wh.id);
	CHECK_INT(rr->integer, 1);
	freeReplyObject(rr);
	rr = itest_cmd(raw, "HGET {pw}:webhooks %s", wh.id);
	CHECK(rr->type == REDIS_REPLY_STRING && strstr(rr->str, "\"revision\":1") != NULL);
	freeReplyObject(rr);

	/* get: only under its own company */
	result_reset(&r);
	CHECK_INT(store_webhook_get(rp->store, COMPANY, wh.id, on_webhook, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);
	CHECK_STR(r.wh.target, "https://hooks.acme.example/a");
	CHECK_INT(r.wh.period, PERIOD_HOURS);
	CHECK_STR(r.wh.secret, SECRET);
	CHECK_INT(r.wh.revision, 1);
	result_reset(&r);
	CHECK_INT(store_webhook_get(rp->store, "globex", wh.id, on_webhook, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_NOT_FOUND);
	result_reset(&r);
	CHECK_INT(store_webhook_get(rp->store, COMPANY, "cccccccccccccccccccccccccccccccc",
				    on_webhook, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_NOT_FOUND);

	/* list */
	result_reset(&r);
	CHECK_INT(store_webhook_list(rp->store, COMPANY, on_list, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);
	CHECK_INT(r.n, 1);
	CHECK_STR(r.ids[0], wh.id);
	result_reset(&r);
	CHECK_INT(store_webhook_list(rp->store, "nobody", on_list, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);
	CHECK_INT(r.n, 0);

	/* replace: compare-and-set on the revision */
	free(wh.target);
	wh.target = strdup("https://hooks.acme.example/b");
	wh.revision = 0; /* stale */
	result_reset(&r);
	CHECK_INT(store_webhook_replace(rp->store, &wh, 0, on_write, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_CONFLICT);
	wh.revision = 1;
	itest_cmd_ok(raw, "ZADD {pw}:failures:%s 1 a 2 b", wh.id);
	result_reset(&r);
	CHECK_INT(store_webhook_replace(rp->store, &wh, 0, on_write, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);
	rr = itest_cmd(raw, "EXISTS {pw}:failures:%s", wh.id);
	CHECK_INT(rr->integer, 1); /* kept: not a re-enable */
	freeReplyObject(rr);
	wh.revision = 2;
	result_reset(&r);
	CHECK_INT(store_webhook_replace(rp->store, &wh, 1, on_write, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);
	rr = itest_cmd(raw, "EXISTS {pw}:failures:%s", wh.id);
	CHECK_INT(rr->integer, 0); /* re-enabling clears the failure history */
	freeReplyObject(rr);
	/* another company's id cannot be replaced through this one */
	free(other.company_id);
	other.company_id = strdup(COMPANY);
	result_reset(&r);
	CHECK_INT(store_webhook_replace(rp->store, &other, 0, on_write, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_NOT_FOUND);

	result_reset(&r);
	CHECK_INT(store_webhook_get(rp->store, COMPANY, wh.id, on_webhook, &r), 0);
	wait_result(&r);
	CHECK_STR(r.wh.target, "https://hooks.acme.example/b");
	CHECK_INT(r.wh.revision, 3);

	/* settings */
	result_reset(&r);
	CHECK_INT(store_settings_get(rp->store, COMPANY, on_settings, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);
	CHECK(r.settings.notification_email == NULL);
	CHECK_INT(r.settings.payload_type, PAYLOAD_JSON);
	{
		struct company_settings s;

		s.notification_email = "ops@acme.example";
		s.payload_type = PAYLOAD_XML;
		result_reset(&r);
		CHECK_INT(store_settings_put(rp->store, COMPANY, &s, on_write, &r), 0);
		wait_result(&r);
		CHECK_INT(r.status, STORE_OK);
	}
	result_reset(&r);
	CHECK_INT(store_settings_get(rp->store, COMPANY, on_settings, &r), 0);
	wait_result(&r);
	CHECK_STR(r.settings.notification_email, "ops@acme.example");
	CHECK_INT(r.settings.payload_type, PAYLOAD_XML);

	/* delete: only under its own company, and its failures go too */
	itest_cmd_ok(raw, "ZADD {pw}:failures:%s 1 a", wh.id);
	result_reset(&r);
	CHECK_INT(store_webhook_delete(rp->store, "globex", wh.id, on_write, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_NOT_FOUND);
	result_reset(&r);
	CHECK_INT(store_webhook_delete(rp->store, COMPANY, wh.id, on_write, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);
	result_reset(&r);
	CHECK_INT(store_webhook_delete(rp->store, COMPANY, wh.id, on_write, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_NOT_FOUND);
	rr = itest_cmd(raw, "EXISTS {pw}:failures:%s", wh.id);
	CHECK_INT(rr->integer, 0);
	freeReplyObject(rr);
	rr = itest_cmd(raw, "HEXISTS {pw}:webhooks %s", wh.id);
	CHECK_INT(rr->integer, 0);
	freeReplyObject(rr);

	/* every write bumped the version: 2 creates, 2 replaces, 1 settings,
	 * 1 delete */
	result_reset(&r);
	CHECK_INT(store_version_get(rp->store, on_version, &r), 0);
	wait_result(&r);
	CHECK_INT(r.version, v0 + 6);

	/* a flushed script cache (failover, SCRIPT FLUSH) costs an EVAL, not
	 * a failure */
	itest_cmd_ok(raw, "SCRIPT FLUSH");
	result_reset(&r);
	CHECK_INT(store_webhook_list(rp->store, "globex", on_list, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);
	CHECK_INT(r.n, 1);
	result_reset(&r);
	CHECK_INT(store_webhook_list(rp->store, "globex", on_list, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_OK);

	result_reset(&r);
	webhook_release(&r.wh);
	company_settings_release(&r.settings);
	webhook_release(&wh);
	webhook_release(&other);
}

/* A Lua rewrite as the failure rule will do it: cjson, enabled=false,
 * disabledAt, disabledReason, revision+1, INCR, PUBLISH. */
static const char lua_disable[] =
	"local d = cjson.decode(redis.call('HGET', KEYS[1], ARGV[1]))\n"
	"d.enabled = false\n"
	"d.disabledAt = tonumber(ARGV[2])\n"
	"d.disabledReason = '3 failures within 3600 s'\n"
	"d.revision = d.revision + 1\n"
	"redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(d))\n"
	"local v = redis.call('INCR', KEYS[2])\n"
	"redis.call('PUBLISH', ARGV[3], v .. ' webhook ' .. ARGV[1])\n"
	"return v\n";

static int same_version(void *arg)
{
	struct replica *rp = arg;

	return registry_version(rp[0].reg) == registry_version(rp[1].reg);
}

static void test_invalidation(struct replica *rp)
{
	struct replica *a = &rp[0], *b = &rp[1];
	struct result r;
	struct webhook wh;
	struct seen s;
	int64_t t0;
	uint64_t loads_before;
	char channel[32];

	memset(&r, 0, sizeof(r));
	result_reset(&r);
	snprintf(channel, sizeof(channel), "pw:changes:%d", cfg.redis_db);
	make_webhook(&wh, "dddddddddddddddddddddddddddddd01", COMPANY,
		     "{\"event\":\"Promotion.Created\",\"target\":\"https://hooks.acme.example/inv\"}");

	/* create through A, seen by B */
	memset(&s, 0, sizeof(s));
	s.rp = b;
	s.id = wh.id;
	s.want_present = 1;
	s.want_enabled = 1;
	t0 = itest_now_ms();
	CHECK_INT(store_webhook_create(a->store, &wh, on_write, &r), 0);
	expect_seen_within_1s(&s, t0, "create");
	CHECK_INT(r.status, STORE_OK);
	/* and it is in B's match index */
	{
		const struct webhook *const *found;
		size_t n = match_find(registry_index(b->reg), COMPANY,
				      EVENT_PROMOTION_CREATED, &found);
		int hit = 0;
		size_t i;

		for (i = 0; i < n; i++)
			hit |= strcmp(found[i]->id, wh.id) == 0;
		CHECK(hit);
	}

	/* replace through B, seen by A */
	free(wh.target);
	wh.target = strdup("https://hooks.acme.example/inv2");
	wh.revision = 1;
	s.rp = a;
	s.target = wh.target;
	result_reset(&r);
	t0 = itest_now_ms();
	CHECK_INT(store_webhook_replace(b->store, &wh, 0, on_write, &r), 0);
	expect_seen_within_1s(&s, t0, "replace");
	CHECK_INT(r.status, STORE_OK);

	/* the failure rule's Lua rewrite, seen by both as disabled */
	s.rp = b;
	s.target = NULL;
	s.want_enabled = 0;
	t0 = itest_now_ms();
	loads_before = registry_full_loads(b->reg);
	{
		redisReply *rr = itest_cmd(raw, "EVAL %s 2 {pw}:webhooks {pw}:version %s %s %s",
					   lua_disable, wh.id, "1748856700000", channel);

		CHECK(rr->type == REDIS_REPLY_INTEGER);
		freeReplyObject(rr);
	}
	expect_seen_within_1s(&s, t0, "disable by script");
	/* That message (an older replica's "<version> webhook <id>") does not
	 * carry the change: a full load took it. */
	CHECK(registry_full_loads(b->reg) > loads_before);
	{
		const struct webhook *const *found;
		size_t n = match_find(registry_index(b->reg), COMPANY,
				      EVENT_PROMOTION_CREATED, &found), i;
		int hit = 0;

		for (i = 0; i < n; i++)
			hit |= strcmp(found[i]->id, wh.id) == 0;
		CHECK(!hit); /* disabled webhooks are not matched */
	}
	/* the API's stale compare-and-set loses against it */
	wh.revision = 2;
	result_reset(&r);
	CHECK_INT(store_webhook_replace(a->store, &wh, 0, on_write, &r), 0);
	wait_result(&r);
	CHECK_INT(r.status, STORE_CONFLICT);
	result_reset(&r);
	CHECK_INT(store_webhook_get(a->store, COMPANY, wh.id, on_webhook, &r), 0);
	wait_result(&r);
	CHECK_INT(r.wh.enabled, 0);
	CHECK_INT(r.wh.revision, 3);
	CHECK_INT(r.wh.disabled_at_ms, 1748856700000LL);
	CHECK_STR(r.wh.target, "https://hooks.acme.example/inv2");

	/* a change that bypasses pub/sub: only the version poll finds it */
	s.rp = b;
	s.want_enabled = -1;
	s.target = "https://hooks.acme.example/silent";
	t0 = itest_now_ms();
	{
		struct webhook silent;
		struct buf doc;

		CHECK_INT(webhook_copy(&silent, &r.wh), 0);
		free(silent.target);
		silent.target = strdup(s.target);
		silent.revision = 4;
		buf_init(&doc, 0);
		webhook_to_storage(&silent, &doc);
		itest_cmd_ok(raw, "HSET {pw}:webhooks %s %b", silent.id, doc.data, doc.len);
		itest_cmd_ok(raw, "INCR {pw}:version");
		buf_release(&doc);
		webhook_release(&silent);
	}
	expect_seen_within_1s(&s, t0, "write without publish");

	/* settings through A, seen by B */
	{
		struct company_settings cs;

		cs.notification_email = "alerts@acme.example";
		cs.payload_type = PAYLOAD_JSON;
		memset(&s, 0, sizeof(s));
		s.rp = b;
		s.company = COMPANY;
		s.email = "alerts@acme.example";
		result_reset(&r);
		t0 = itest_now_ms();
		CHECK_INT(store_settings_put(a->store, COMPANY, &cs, on_write, &r), 0);
		expect_seen_within_1s(&s, t0, "settings");
		CHECK(registry_settings(b->reg, "unknown-co")->notification_email == NULL);
		CHECK_INT(registry_settings(b->reg, "unknown-co")->payload_type, PAYLOAD_JSON);
	}

	/* delete through B, gone from A */
	memset(&s, 0, sizeof(s));
	s.rp = a;
	s.id = wh.id;
	s.want_present = 0;
	result_reset(&r);
	t0 = itest_now_ms();
	CHECK_INT(store_webhook_delete(b->store, COMPANY, wh.id, on_write, &r), 0);
	expect_seen_within_1s(&s, t0, "delete");
	/* both caches end at the same version */
	CHECK(itest_run_until(base, same_version, rp, 1000) >= 0);

	result_reset(&r);
	webhook_release(&r.wh);
	company_settings_release(&r.settings);
	webhook_release(&wh);
}

static int both_down(void *arg)
{
	struct replica *rp = arg;

	return !store_is_ready(rp[0].store) && !store_is_ready(rp[1].store);
}

static int both_ready(void *arg)
{
	struct replica *rp = arg;

	return store_is_ready(rp[0].store) && store_is_ready(rp[1].store);
}

/* Kills this test's connections to the shared Redis (all in TEST_DB),
 * not other tests', and not the raw one. Returns how many. */
static int kill_our_clients(void)
{
	redisReply *me = itest_cmd(raw, "CLIENT ID");
	redisReply *list = itest_cmd(raw, "CLIENT LIST");
	char want_db[16];
	const char *line;
	int killed = 0;

	snprintf(want_db, sizeof(want_db), " db=%d ", TEST_DB);
	for (line = list->str; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		char buf[1024];
		long long id;

		snprintf(buf, sizeof(buf), "%.*s", (int)(len < 1000 ? len : 1000), line);
		if (sscanf(buf, "id=%lld", &id) == 1 && id != me->integer &&
		    strstr(buf, want_db)) {
			itest_cmd_ok(raw, "CLIENT KILL ID %lld", id);
			killed++;
		}
		line = eol ? eol + 1 : NULL;
	}
	freeReplyObject(me);
	freeReplyObject(list);
	return killed;
}

/* Connections dropped by Redis: both replicas reconnect and resubscribe,
 * and invalidation works again. */
static void test_reconnect(struct replica *rp)
{
	struct result r;
	struct webhook wh;
	struct seen s;
	int64_t t0, took;

	memset(&r, 0, sizeof(r));
	result_reset(&r);
	CHECK_INT(kill_our_clients(), 4); /* two replicas, cmd and sub each */
	took = itest_run_until(base, both_down, rp, 2000);
	CHECK(took >= 0);
	CHECK(registry_is_loaded(rp[1].reg)); /* the cache stays */
	took = itest_run_until(base, both_ready, rp, 3000);
	fprintf(stderr, "  reconnect: ready again after %lld ms\n", (long long)took);
	CHECK(took >= 0);

	make_webhook(&wh, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeee01", COMPANY,
		     "{\"event\":\"Product.ImportCompleted\",\"target\":\"https://hooks.acme.example/r\"}");
	memset(&s, 0, sizeof(s));
	s.rp = &rp[1];
	s.id = wh.id;
	s.want_present = 1;
	s.want_enabled = -1;
	t0 = itest_now_ms();
	CHECK_INT(store_webhook_create(rp[0].store, &wh, on_write, &r), 0);
	expect_seen_within_1s(&s, t0, "create after reconnect");
	CHECK_INT(r.status, STORE_OK);
	webhook_release(&wh);
	result_reset(&r);
}

static int never(void *arg)
{
	(void)arg;
	return 0;
}

struct writes {
	int done, failed;
	int64_t version; /* the highest a write reached */
};

static void on_bulk_write(void *arg, enum store_status status, int64_t version)
{
	struct writes *w = arg;

	w->done++;
	w->failed += status != STORE_OK;
	if (version > w->version)
		w->version = version;
}

static int writes_done(void *arg)
{
	struct writes *w = arg;

	return w->done == INCR_HOOKS;
}

struct at_version {
	struct replica *rp;
	int64_t version;
};

static int cache_reached(void *arg)
{
	struct at_version *av = arg;

	return registry_version(av->rp->reg) >= av->version;
}

/* The change feed carries each change: the other replica applies
 * thousands of creates, a replace, a disable, a delete and a settings
 * write one at a time, without a single full load, and its cache (lookup
 * by id, match index, settings) ends exactly as a full load would make
 * it. */
static void test_incremental(struct replica *rp)
{
	struct replica *a = &rp[0], *b = &rp[1];
	static struct webhook hooks[INCR_HOOKS];
	struct writes w = { 0, 0, 0 };
	struct at_version av = { b, 0 };
	struct result r;
	struct seen s;
	uint64_t loads0 = registry_full_loads(b->reg), applied0 = registry_changes_applied(b->reg);
	size_t count0 = registry_count(b->reg);
	const struct webhook *const *found;
	int64_t t0, took;
	char id[40], company[32];
	int i;

	for (i = 0; i < INCR_HOOKS; i++) {
		/* Ids in an order unlike their creation's. */
		snprintf(id, sizeof(id), "%08x%024d", (unsigned)(i * 2654435761u), i);
		snprintf(company, sizeof(company), "incr-%d", i % 100);
		make_webhook(&hooks[i], id, company,
			     "{\"event\":\"Promotion.Created\",\"target\":\"https://hooks.acme.example/i\"}");
	}
	/* In batches over about two seconds: the version polls (every
	 * 500 ms) meet a stream of changes, whose messages may take the cache
	 * past a poll's answer before it arrives (that is no wiped Redis). */
	t0 = itest_now_ms();
	for (i = 0; i < INCR_HOOKS; i++) {
		CHECK_INT(store_webhook_create(a->store, &hooks[i], on_bulk_write, &w), 0);
		if (i % (INCR_HOOKS / 40) == 0)
			itest_run_until(base, never, NULL, 50);
	}
	CHECK(itest_run_until(base, writes_done, &w, 20000) >= 0);
	CHECK_INT(w.failed, 0);
	av.version = w.version;
	took = itest_run_until(base, cache_reached, &av, 5000);
	CHECK(took >= 0);
	fprintf(stderr, "  %d creates: the other replica's cache current %lld ms after the first"
		" (%llu applied in place, %llu full loads)\n",
		INCR_HOOKS, (long long)(itest_now_ms() - t0),
		(unsigned long long)(registry_changes_applied(b->reg) - applied0),
		(unsigned long long)(registry_full_loads(b->reg) - loads0));
	CHECK_INT(registry_count(b->reg), count0 + INCR_HOOKS);
	CHECK_INT(registry_full_loads(b->reg), loads0);
	CHECK(registry_changes_applied(b->reg) >= applied0 + INCR_HOOKS);
	for (i = 0; i < INCR_HOOKS; i++) {
		if (!registry_webhook(b->reg, hooks[i].id))
			break;
	}
	CHECK_INT(i, INCR_HOOKS);
	CHECK_INT(match_find(registry_index(b->reg), "incr-7", EVENT_PROMOTION_CREATED, &found),
		  INCR_HOOKS / 100);

	/* replace: another target and type */
	memset(&r, 0, sizeof(r));
	result_reset(&r);
	free(hooks[7].target);
	hooks[7].target = strdup("https://hooks.acme.example/moved");
	hooks[7].event = EVENT_PROMOTION_UPDATED;
	hooks[7].revision = 1;
	memset(&s, 0, sizeof(s));
	s.rp = b;
	s.id = hooks[7].id;
	s.want_present = 1;
	s.want_enabled = 1;
	s.target = hooks[7].target;
	t0 = itest_now_ms();
	CHECK_INT(store_webhook_replace(a->store, &hooks[7], 0, on_write, &r), 0);
	expect_seen_within_1s(&s, t0, "replace, applied in place");
	CHECK_INT(match_find(registry_index(b->reg), "incr-7", EVENT_PROMOTION_CREATED, &found),
		  INCR_HOOKS / 100 - 1);
	CHECK_INT(match_find(registry_index(b->reg), "incr-7", EVENT_PROMOTION_UPDATED, &found), 1);
	CHECK(found && strcmp(found[0]->id, hooks[7].id) == 0);

	/* disable: out of the match index, still in the cache */
	result_reset(&r);
	hooks[7].enabled = 0;
	hooks[7].revision = 2;
	s.want_enabled = 0;
	t0 = itest_now_ms();
	CHECK_INT(store_webhook_replace(a->store, &hooks[7], 0, on_write, &r), 0);
	expect_seen_within_1s(&s, t0, "disable, applied in place");
	CHECK_INT(match_find(registry_index(b->reg), "incr-7", EVENT_PROMOTION_UPDATED, &found), 0);

	/* delete */
	result_reset(&r);
	s.id = hooks[107].id;
	s.want_present = 0;
	s.want_enabled = -1;
	s.target = NULL;
	t0 = itest_now_ms();
	CHECK_INT(store_webhook_delete(a->store, hooks[107].company_id, hooks[107].id, on_write, &r),
		  0);
	expect_seen_within_1s(&s, t0, "delete, applied in place");
	CHECK_INT(match_find(registry_index(b->reg), "incr-7", EVENT_PROMOTION_CREATED, &found),
		  INCR_HOOKS / 100 - 2);

	/* settings */
	{
		struct company_settings cs = { "incr@acme.example", PAYLOAD_XML };

		result_reset(&r);
		CHECK_INT(store_settings_put(a->store, "incr-3", &cs, on_write, &r), 0);
		wait_result(&r);
		av.version = r.version;
		CHECK(itest_run_until(base, cache_reached, &av, 3000) >= 0);
		CHECK(registry_settings(b->reg, "incr-3")->payload_type == PAYLOAD_XML);
		CHECK_STR(registry_settings(b->reg, "incr-3")->notification_email,
			  "incr@acme.example");
	}
	CHECK_INT(registry_full_loads(b->reg), loads0);
	CHECK_INT(registry_count(b->reg), count0 + INCR_HOOKS - 1);
	for (i = 0; i < INCR_HOOKS; i++)
		webhook_release(&hooks[i]);
	result_reset(&r);
}

struct count_wait {
	struct replica *rp;
	size_t n;
	int64_t version;
};

static int cache_at(void *arg)
{
	struct count_wait *cw = arg;

	return registry_count(cw->rp->reg) == cw->n &&
	       registry_version(cw->rp->reg) == cw->version;
}

/* A Redis that lost everything (restart without persistence): the version
 * counter starts over, the caches follow within a poll, and the lower
 * versions that come next are not mistaken for old news. */
static void test_wipe(struct replica *rp)
{
	struct count_wait cw = { &rp[1], 0, 0 };
	struct result r;
	struct webhook wh;
	struct seen s;
	int64_t t0, took;
	int changes;

	CHECK(registry_count(rp[1].reg) > 0);
	itest_cmd_ok(raw, "FLUSHDB");
	t0 = itest_now_ms();
	took = itest_run_until(base, cache_at, &cw, 3000);
	fprintf(stderr, "  wipe: cache emptied after %lld ms\n", (long long)took);
	CHECK(took >= 0 && took < 1000);
	cw.rp = &rp[0];
	CHECK(itest_run_until(base, cache_at, &cw, 1000) >= 0);
	/* and stays quiet: no reload loop */
	changes = rp[0].changes + rp[1].changes;
	itest_run_until(base, never, NULL, 1200);
	CHECK_INT(rp[0].changes + rp[1].changes, changes);

	memset(&r, 0, sizeof(r));
	result_reset(&r);
	make_webhook(&wh, "ffffffffffffffffffffffffffffff01", COMPANY,
		     "{\"event\":\"Promotion.Updated\",\"target\":\"https://hooks.acme.example/w\"}");
	memset(&s, 0, sizeof(s));
	s.rp = &rp[1];
	s.id = wh.id;
	s.want_present = 1;
	s.want_enabled = -1;
	t0 = itest_now_ms();
	CHECK_INT(store_webhook_create(rp[0].store, &wh, on_write, &r), 0);
	expect_seen_within_1s(&s, t0, "create after wipe");
	CHECK_INT(r.version, 1);
	webhook_release(&wh);
	result_reset(&r);
}

/*
 * A fake Redis on loopback for the watchdog: it answers the handshake
 * (SELECT, SCRIPT LOAD, SUBSCRIBE) unless told to stay silent, and never
 * answers anything else, like a server that hangs. The shared Redis is
 * not paused for this, so parallel tests are not disturbed.
 */
struct fake_redis {
	struct evconnlistener *lis;
	int port;
	int silent_handshake;
	struct bufferevent *conns[32];
	int n_conns;
};

static void fake_reply(struct bufferevent *bev, const char *cmd, size_t cmdlen,
		       const char *arg1, size_t arg1len)
{
	if ((cmdlen == 6 && strncasecmp(cmd, "SELECT", 6) == 0) ||
	    (cmdlen == 4 && strncasecmp(cmd, "AUTH", 4) == 0)) {
		bufferevent_write(bev, "+OK\r\n", 5);
	} else if (cmdlen == 6 && strncasecmp(cmd, "SCRIPT", 6) == 0) {
		bufferevent_write(bev, "$40\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 47);
	} else if (cmdlen == 9 && strncasecmp(cmd, "SUBSCRIBE", 9) == 0) {
		char out[256];
		int n = snprintf(out, sizeof(out), "*3\r\n$9\r\nsubscribe\r\n$%zu\r\n%.*s\r\n:1\r\n",
				 arg1len, (int)arg1len, arg1);

		bufferevent_write(bev, out, (size_t)n);
	}
}

/* Consumes whole RESP commands from the input and answers them. */
static void fake_read(struct bufferevent *bev, void *arg)
{
	struct fake_redis *fk = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		size_t len = evbuffer_get_length(in), pos, i;
		const char *p = (const char *)evbuffer_pullup(in, -1);
		const char *args[2] = { NULL, NULL };
		size_t arglens[2] = { 0, 0 };
		long n;
		char *end;

		if (len == 0 || !p)
			return;
		if (p[0] != '*' || !memchr(p, '\n', len))
			return;
		n = strtol(p + 1, &end, 10);
		pos = (size_t)(strchr(p, '\n') - p) + 1;
		for (i = 0; i < (size_t)n; i++) {
			const char *nl;
			long alen;

			if (pos >= len || p[pos] != '$')
				return;
			nl = memchr(p + pos, '\n', len - pos);
			if (!nl)
				return;
			alen = strtol(p + pos + 1, &end, 10);
			pos = (size_t)(nl - p) + 1;
			if (pos + (size_t)alen + 2 > len)
				return; /* incomplete */
			if (i < 2) {
				args[i] = p + pos;
				arglens[i] = (size_t)alen;
			}
			pos += (size_t)alen + 2;
		}
		if (!fk->silent_handshake && args[0])
			fake_reply(bev, args[0], arglens[0], args[1], arglens[1]);
		evbuffer_drain(in, pos);
	}
}

static void fake_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	(void)arg; /* the connection is freed with the fake */
}

static void fake_accept(struct evconnlistener *lis, evutil_socket_t fd,
			struct sockaddr *sa, int socklen, void *arg)
{
	struct fake_redis *fk = arg;
	struct bufferevent *bev;

	(void)lis;
	(void)sa;
	(void)socklen;
	if (fk->n_conns == 32) {
		evutil_closesocket(fd);
		return;
	}
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	bufferevent_setcb(bev, fake_read, NULL, fake_event, fk);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	fk->conns[fk->n_conns++] = bev;
}

static void fake_start(struct fake_redis *fk, int silent_handshake)
{
	struct sockaddr_in sin;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	memset(fk, 0, sizeof(*fk));
	fk->silent_handshake = silent_handshake;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fk->lis = evconnlistener_new_bind(base, fake_accept, fk,
					  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
					  (struct sockaddr *)&sin, sizeof(sin));
	if (!fk->lis || getsockname(evconnlistener_get_fd(fk->lis),
				    (struct sockaddr *)&ss, &sl) < 0) {
		fprintf(stderr, "cannot start the fake redis\n");
		exit(1);
	}
	fk->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void fake_stop(struct fake_redis *fk)
{
	int i;

	for (i = 0; i < fk->n_conns; i++)
		bufferevent_free(fk->conns[i]);
	evconnlistener_free(fk->lis);
}

static int store_ready(void *arg)
{
	return store_is_ready(arg);
}

/* A Redis that stops answering: the command watchdog fails the operation
 * instead of leaving it hanging forever. */
static void test_stall(void)
{
	struct fake_redis fk;
	struct config c = cfg;
	struct store *st;
	struct result r;
	char err[128];
	int64_t t0, took;

	fake_start(&fk, 0);
	c.redis_host = "127.0.0.1";
	c.redis_port = fk.port;
	c.redis_password = NULL;
	st = store_new(base, &c, err, sizeof(err));
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK(itest_run_until(base, store_ready, st, 3000) >= 0);
	memset(&r, 0, sizeof(r));
	result_reset(&r);
	t0 = itest_now_ms();
	CHECK_INT(store_version_get(st, on_version, &r), 0);
	took = itest_run_until(base, result_done, &r, 9000);
	fprintf(stderr, "  stalled redis: failed after %lld ms with %s\n",
		(long long)took, store_status_name(r.status));
	CHECK(took >= 0);
	CHECK_INT(r.status, STORE_UNAVAILABLE);
	CHECK(itest_now_ms() - t0 >= 4500);
	CHECK(itest_now_ms() - t0 < 6500);
	store_free(st);
	fake_stop(&fk);
	result_reset(&r);
}

/* A server that accepts but never completes the handshake: the connect
 * watchdog gives up, and a waiting operation fails with it. */
static void test_silent_handshake(void)
{
	struct fake_redis fk;
	struct config c = cfg;
	struct store *st;
	struct result r;
	char err[128];
	int64_t took;

	fake_start(&fk, 1);
	c.redis_host = "127.0.0.1";
	c.redis_port = fk.port;
	c.redis_password = "pw";
	st = store_new(base, &c, err, sizeof(err));
	CHECK(st != NULL);
	if (!st)
		return;
	memset(&r, 0, sizeof(r));
	result_reset(&r);
	CHECK_INT(store_version_get(st, on_version, &r), 0);
	took = itest_run_until(base, result_done, &r, 9000);
	fprintf(stderr, "  silent handshake: failed after %lld ms with %s\n",
		(long long)took, store_status_name(r.status));
	CHECK(took >= 1500);
	CHECK(took < 4000);
	CHECK_INT(r.status, STORE_UNAVAILABLE);
	CHECK(!store_is_ready(st));
	store_free(st);
	fake_stop(&fk);
	result_reset(&r);
}

/* A store that cannot reach Redis at all answers quickly, not never. */
static void test_unreachable(void)
{
	struct config bad = cfg;
	struct store *st;
	struct result r;
	char err[128];
	int64_t took;

	bad.redis_port = 1; /* nothing listens there */
	st = store_new(base, &bad, err, sizeof(err));
	CHECK(st != NULL);
	if (!st)
		return;
	memset(&r, 0, sizeof(r));
	result_reset(&r);
	CHECK_INT(store_version_get(st, on_version, &r), 0);
	took = itest_run_until(base, result_done, &r, 8000);
	CHECK(took >= 0);
	CHECK(took < 5500);
	CHECK_INT(r.status, STORE_UNAVAILABLE);
	CHECK(!store_is_ready(st));
	store_free(st);
	result_reset(&r);
}

int main(void)
{
	struct replica rp[2];
	int64_t took;

	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	/* hiredis writes with write(2): a dropped connection must not kill
	 * the test (the service ignores SIGPIPE the same way) */
	signal(SIGPIPE, SIG_IGN);
	itest_config(&cfg, TEST_DB);
	base = event_base_new();
	if (!base) {
		fprintf(stderr, "event_base_new failed\n");
		return 1;
	}
	raw = itest_redis(&cfg);
	itest_cmd_ok(raw, "FLUSHDB");

	replica_start(&rp[0]);
	replica_start(&rp[1]);
	took = itest_run_until(base, replicas_loaded, rp, 5000);
	CHECK(took >= 0);
	CHECK_INT(registry_count(rp[0].reg), 0);
	CHECK(registry_index(rp[0].reg) != NULL);

	test_crud(&rp[0]);
	test_invalidation(rp);
	test_incremental(rp);
	test_reconnect(rp);
	test_wipe(rp);
	test_stall();
	test_silent_handshake();
	test_unreachable();
	fprintf(stderr, "worst invalidation latency: %lld ms\n", (long long)worst_ms);

	replica_stop(&rp[0]);
	replica_stop(&rp[1]);
	redisFree(raw);
	event_base_free(base);
	config_release(&cfg);
	return TEST_DONE();
}
