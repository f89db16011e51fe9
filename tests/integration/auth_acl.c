/*
 * Integration test of Redis authentication (rlink.c's handshake) against a
 * real redis-server whose default user is switched off and whose only user
 * is the ACL user pw-acl (tests/scripts/redis-acl.sh; REDIS_PORT names it):
 * with PROMO_WEBHOOKS_REDIS_URL=redis://pw-acl:acl-secret@host:port/db the
 * store sends AUTH pw-acl acl-secret and works (a webhook written and read
 * back, the change feed subscribed); with a wrong password, or with no
 * user (AUTH password speaks for the default user, which is off), it never
 * becomes ready, its operations end STORE_UNAVAILABLE, and the log says
 * why (WRONGPASS) without the password.
 */
#include "promo_webhooks/log.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/webhook.h"
#include "testutil.h"
#include "itest.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

static struct event_base *base;

struct url_env {
	const char *url;
};

static const char *lookup(void *arg, const char *name)
{
	const struct url_env *env = arg;

	if (strcmp(name, "PROMO_WEBHOOKS_REDIS_URL") == 0)
		return env->url;
	if (strcmp(name, "PROMO_WEBHOOKS_ADMIN_TOKEN") == 0)
		return "test-admin-token";
	return NULL;
}

static void load_config(struct config *cfg, const char *url)
{
	struct url_env env = { url };
	char err[256];

	if (config_load(cfg, lookup, &env, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "config: %s\n", err);
		exit(1);
	}
}

struct result {
	int done;
	enum store_status status;
	int64_t version;
	char target[128];
};

static void on_write(void *arg, enum store_status status, int64_t version)
{
	struct result *r = arg;

	r->done = 1;
	r->status = status;
	r->version = version;
}

static void on_get(void *arg, enum store_status status, const struct webhook *wh)
{
	struct result *r = arg;

	r->done = 1;
	r->status = status;
	if (wh)
		snprintf(r->target, sizeof(r->target), "%s", wh->target);
}

struct feed {
	int resyncs;
};

static void on_change(void *arg, const struct store_change *ch)
{
	struct feed *f = arg;

	if (ch->kind == STORE_CHANGE_RESYNC)
		f->resyncs++;
}

static int ready_and_subscribed(void *arg)
{
	void **p = arg;

	return store_is_ready(p[0]) && ((struct feed *)p[1])->resyncs > 0;
}

static void make_webhook(struct webhook *wh)
{
	static const char body[] =
		"{\"event\":\"Promotion.Created\",\"target\":\"https://hooks.acme.example/acl\"}";
	struct webhook_error err;

	webhook_init(wh);
	wh->id = strdup("acl00000000000000000000000000001");
	wh->company_id = strdup("acme");
	if (webhook_apply_json(wh, WEBHOOK_CREATE, body, strlen(body), 1748856612345LL,
			       NULL, &err) < 0) {
		fprintf(stderr, "bad test webhook: %s %s\n", err.field, err.message);
		exit(1);
	}
}

/* The right user and password: the store works. */
static void test_acl_user(int port)
{
	struct store *st;
	struct config cfg;
	struct webhook wh;
	struct feed feed = { 0 };
	struct result r;
	char url[128], err[256];
	void *both[2];

	snprintf(url, sizeof(url), "redis://pw-acl:acl-secret@127.0.0.1:%d/3", port);
	load_config(&cfg, url);
	CHECK_STR(cfg.redis_user, "pw-acl");
	st = store_new(base, &cfg, err, sizeof(err));
	CHECK(st != NULL);
	store_subscribe(st, on_change, &feed);
	both[0] = st;
	both[1] = &feed;
	CHECK(itest_run_until(base, ready_and_subscribed, both, 5000) >= 0);

	make_webhook(&wh);
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_webhook_create(st, &wh, on_write, &r), 0);
	itest_wait_done(base, &r, 5000);
	CHECK_INT(r.status, STORE_OK);
	CHECK(r.version >= 1);
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_webhook_get(st, "acme", wh.id, on_get, &r), 0);
	itest_wait_done(base, &r, 5000);
	CHECK_INT(r.status, STORE_OK);
	CHECK_STR(r.target, "https://hooks.acme.example/acl");
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_webhook_delete(st, "acme", wh.id, on_write, &r), 0);
	itest_wait_done(base, &r, 5000);
	CHECK_INT(r.status, STORE_OK);
	webhook_release(&wh);
	store_free(st);
	config_release(&cfg);
}

static int never(void *arg)
{
	(void)arg;
	return 0;
}

/*
 * A URL whose credentials Redis refuses: never ready, operations end
 * STORE_UNAVAILABLE, and stderr (the log) names the refusal, not the
 * password. want is what the log must say.
 */
static void test_refused(const char *url, const char *want, const char *secret)
{
	char path[] = "/tmp/pw-acl-log-XXXXXX";
	struct store *st;
	struct config cfg;
	struct webhook wh;
	struct result r;
	char err[256], *log;
	int fd, saved;

	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);

	load_config(&cfg, url);
	st = store_new(base, &cfg, err, sizeof(err));
	CHECK(st != NULL);
	/* Two seconds: several handshakes refused and retried. */
	itest_run_until(base, never, NULL, 2000);
	CHECK_INT(store_is_ready(st), 0);
	make_webhook(&wh);
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_webhook_create(st, &wh, on_write, &r), 0);
	itest_wait_done(base, &r, 8000);
	CHECK_INT(r.status, STORE_UNAVAILABLE);
	webhook_release(&wh);
	store_free(st);
	config_release(&cfg);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	log = test_read_file(path, NULL);
	unlink(path);
	CHECK(log != NULL);
	if (!log)
		return;
	if (!strstr(log, want) || strstr(log, secret))
		fprintf(stderr, "log of %s:\n%s", url, log);
	CHECK(strstr(log, "handshake refused") != NULL);
	CHECK(strstr(log, want) != NULL);
	CHECK(strstr(log, secret) == NULL);
	free(log);
}

int main(void)
{
	const char *p = getenv("REDIS_PORT");
	char url[128];
	int port;

	if (!p || !*p) {
		fprintf(stderr, "REDIS_PORT is not set: run under tests/scripts/with-env.sh "
			"with the state of tests/scripts/redis-acl.sh (ctest does)\n");
		return 1;
	}
	port = (int)strtol(p, NULL, 10);
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "REDIS_PORT is not a port: %s\n", p);
		return 1;
	}
	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (!base)
		return 1;

	test_acl_user(port);
	snprintf(url, sizeof(url), "redis://pw-acl:not-the-secret@127.0.0.1:%d/3", port);
	test_refused(url, "WRONGPASS", "not-the-secret");
	/* No user: AUTH <password> is the default user's, which is off. */
	snprintf(url, sizeof(url), "redis://:acl-secret@127.0.0.1:%d/3", port);
	test_refused(url, "WRONGPASS", "acl-secret");

	event_base_free(base);
	return TEST_DONE();
}
