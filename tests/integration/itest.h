/*
 * itest: what the Redis-backed integration tests share: the configuration
 * from REDIS_URL, a raw synchronous hiredis connection for setting up and
 * inspecting the data behind the store's back, and running the event loop
 * until a condition holds (measured, never a sleep).
 */
#ifndef PROMO_WEBHOOKS_ITEST_H
#define PROMO_WEBHOOKS_ITEST_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "promo_webhooks/config.h"

struct itest_env {
	const char *redis_url;
	const char *listen;
};

static inline const char *itest_lookup(void *arg, const char *name)
{
	const struct itest_env *env = arg;

	if (strcmp(name, "PROMO_WEBHOOKS_REDIS_URL") == 0)
		return env->redis_url;
	if (strcmp(name, "PROMO_WEBHOOKS_ADMIN_TOKEN") == 0)
		return "test-admin-token";
	if (strcmp(name, "PROMO_WEBHOOKS_HTTP_LISTEN") == 0)
		return env->listen;
	if (strcmp(name, "PROMO_WEBHOOKS_CACHE_REFRESH_MS") == 0)
		return "500";
	return NULL;
}

/*
 * Loads the service configuration with the Redis of REDIS_URL, using
 * database db (each test file its own, so tests may run in parallel), and
 * the admin API on 127.0.0.1 with a free port. Exits when REDIS_URL is unset.
 */
static inline void itest_config(struct config *cfg, int db)
{
	struct itest_env env;
	char err[256];

	env.redis_url = getenv("REDIS_URL");
	env.listen = "127.0.0.1:0";
	if (!env.redis_url || !*env.redis_url) {
		fprintf(stderr, "REDIS_URL is not set: run under tests/scripts/with-env.sh "
			"(ctest does) or export REDIS_URL=redis://127.0.0.1:PORT/0\n");
		exit(1);
	}
	if (config_load(cfg, itest_lookup, &env, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "config: %s\n", err);
		exit(1);
	}
	cfg->redis_db = db;
}

static inline int64_t itest_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A synchronous connection to the test database. Exits on failure. */
static inline redisContext *itest_redis(const struct config *cfg)
{
	redisContext *c = redisConnect(cfg->redis_host, cfg->redis_port);
	redisReply *r;

	if (!c || c->err) {
		fprintf(stderr, "cannot connect to redis %s:%d: %s\n", cfg->redis_host,
			cfg->redis_port, c ? c->errstr : "out of memory");
		exit(1);
	}
	if (cfg->redis_password) {
		r = redisCommand(c, "AUTH %s", cfg->redis_password);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "redis AUTH failed\n");
			exit(1);
		}
		freeReplyObject(r);
	}
	r = redisCommand(c, "SELECT %d", cfg->redis_db);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "redis SELECT failed\n");
		exit(1);
	}
	freeReplyObject(r);
	return c;
}

/* Runs a command and returns its reply (the caller frees it); exits when
 * the connection fails. */
static inline redisReply *itest_cmd(redisContext *c, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r) {
		fprintf(stderr, "redis command failed: %s\n", c->errstr);
		exit(1);
	}
	return r;
}

static inline void itest_cmd_ok(redisContext *c, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "redis command %s failed: %s\n", fmt,
			r ? r->str : c->errstr);
		exit(1);
	}
	freeReplyObject(r);
}

typedef int itest_cond(void *arg);

/*
 * Runs the loop until cond(arg) holds or timeout_ms pass. Returns the
 * milliseconds it took, or -1 on timeout. A 10 ms timer keeps the loop
 * turning so the condition is checked promptly.
 */
static inline void itest_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static inline int64_t itest_run_until(struct event_base *base, itest_cond *cond,
				      void *arg, int64_t timeout_ms)
{
	struct timeval tv = { 0, 10000 };
	struct event *tick = event_new(base, -1, EV_PERSIST, itest_tick, NULL);
	int64_t start = itest_now_ms(), took = -1;

	if (!tick || event_add(tick, &tv) < 0) {
		fprintf(stderr, "cannot arm the test tick\n");
		exit(1);
	}
	for (;;) {
		if (cond(arg)) {
			took = itest_now_ms() - start;
			break;
		}
		if (itest_now_ms() - start > timeout_ms)
			break;
		if (event_base_loop(base, EVLOOP_ONCE) < 0)
			break;
	}
	event_free(tick);
	return took;
}

/* For result structs whose first member is an int done flag that their
 * callback sets. */
static inline int itest_is_done(void *arg)
{
	return *(int *)arg != 0;
}

/* Runs the loop until the result r is done; ends the test after
 * timeout_ms. */
static inline void itest_wait_done(struct event_base *base, void *r, int64_t timeout_ms)
{
	if (itest_run_until(base, itest_is_done, r, timeout_ms) < 0) {
		fprintf(stderr, "operation did not complete\n");
		exit(1);
	}
}

#endif
