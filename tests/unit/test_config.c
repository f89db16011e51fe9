/*
 * Unit tests of config: defaults, every kind of value, and errors that are
 * one line naming the variable (and never quoting a secret).
 */
#include "promo_webhooks/config.h"
#include "testutil.h"

#include <stdint.h>

#define MAX_VARS 32

/* A fake environment: "NAME=value" entries, like environ. */
struct env {
	char *entries[MAX_VARS + 1];
	size_t n;
};

static void env_set(struct env *e, const char *name, const char *value)
{
	size_t len = strlen(name) + 1 + strlen(value) + 1;
	char *p = malloc(len);

	if (!p || e->n == MAX_VARS) {
		free(p);
		return;
	}
	snprintf(p, len, "%s=%s", name, value);
	e->entries[e->n++] = p;
	e->entries[e->n] = NULL;
}

static void env_clear(struct env *e)
{
	while (e->n)
		free(e->entries[--e->n]);
	e->entries[0] = NULL;
}

static const char *env_lookup(void *arg, const char *name)
{
	struct env *e = arg;
	size_t i, len = strlen(name);

	for (i = 0; i < e->n; i++) {
		if (strncmp(e->entries[i], name, len) == 0 &&
		    e->entries[i][len] == '=')
			return e->entries[i] + len + 1;
	}
	return NULL;
}

static int load(struct env *e, struct config *cfg, char *err, size_t errlen)
{
	err[0] = '\0';
	return config_load(cfg, env_lookup, e, e->entries, err, errlen);
}

static void test_defaults(void)
{
	struct env e = { { NULL }, 0 };
	struct config cfg;
	char err[256];

	env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "s3cret");
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), 0);
	CHECK_STR(cfg.kafka_brokers, "localhost:9092");
	CHECK_STR(cfg.kafka_group, "promo-webhooks");
	CHECK_INT(cfg.n_event_topics, 1);
	CHECK_STR(cfg.event_topics[0], "promo.events");
	CHECK_STR(cfg.email_topic, "promo.email");
	CHECK_STR(cfg.dead_letter_topic, "promo.events.dead-letter");
	CHECK_STR(cfg.redis_host, "127.0.0.1");
	CHECK_INT(cfg.redis_port, 6379);
	CHECK(cfg.redis_password == NULL);
	CHECK(cfg.redis_user == NULL);
	CHECK_INT(cfg.redis_db, 0);
	CHECK_STR(cfg.http_host, "0.0.0.0");
	CHECK_INT(cfg.http_port, 8080);
	CHECK_STR(cfg.admin_token, "s3cret");
	CHECK_INT(cfg.failure_threshold, 3);
	CHECK_INT(cfg.failure_window_s, 3600);
	CHECK_INT(cfg.n_retries, 2);
	CHECK_INT(cfg.retry_schedule_s[0], 60);
	CHECK_INT(cfg.retry_schedule_s[1], 600);
	CHECK_INT(cfg.delivery_timeout_ms, 10000);
	CHECK_INT(cfg.allow_private_targets, 0);
	CHECK_INT(cfg.scheduler_tick_ms, 1000);
	CHECK_INT(cfg.max_in_flight, 4096);
	CHECK_INT(cfg.max_in_flight_per_target, 256);
	CHECK_INT(cfg.target_idle_ms, 300000);
	CHECK_INT(cfg.shutdown_grace_ms, 20000);
	CHECK_INT(cfg.cache_refresh_ms, 500);
	CHECK_INT(cfg.log_level, LOG_LEVEL_INFO);
	CHECK_INT(cfg.log_format, LOG_FORMAT_JSON);
	CHECK_INT(cfg.n_rdkafka, 0);
	config_release(&cfg);
	CHECK(cfg.kafka_brokers == NULL);
	/* Releasing twice is harmless. */
	config_release(&cfg);
	env_clear(&e);
}

static void test_values(void)
{
	struct env e = { { NULL }, 0 };
	struct config cfg;
	char err[256];

	env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "tok");
	env_set(&e, "PROMO_WEBHOOKS_KAFKA_BROKERS", "k1:9092,k2:9092");
	env_set(&e, "PROMO_WEBHOOKS_KAFKA_GROUP", "g");
	env_set(&e, "PROMO_WEBHOOKS_EVENT_TOPICS", "a.events, b_events ,C-3");
	env_set(&e, "PROMO_WEBHOOKS_EMAIL_TOPIC", "mail");
	env_set(&e, "PROMO_WEBHOOKS_DEAD_LETTER_TOPIC", "dlq");
	env_set(&e, "PROMO_WEBHOOKS_REDIS_URL",
		"redis://user%40x:p%3Ass@w0rd@redis.internal:6380/5");
	env_set(&e, "PROMO_WEBHOOKS_HTTP_LISTEN", "[::1]:0");
	env_set(&e, "PROMO_WEBHOOKS_FAILURE_THRESHOLD", "5");
	env_set(&e, "PROMO_WEBHOOKS_FAILURE_WINDOW", "60");
	env_set(&e, "PROMO_WEBHOOKS_RETRY_SCHEDULE", "1, 2,3");
	env_set(&e, "PROMO_WEBHOOKS_DELIVERY_TIMEOUT_MS", "250");
	env_set(&e, "PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true");
	env_set(&e, "PROMO_WEBHOOKS_SCHEDULER_TICK_MS", "100");
	env_set(&e, "PROMO_WEBHOOKS_LOG_LEVEL", "debug");
	env_set(&e, "PROMO_WEBHOOKS_LOG_FORMAT", "text");
	env_set(&e, "PROMO_WEBHOOKS_RDKAFKA_SASL_MECHANISMS", "PLAIN");
	env_set(&e, "PROMO_WEBHOOKS_RDKAFKA_security_protocol", "sasl_ssl");
	env_set(&e, "PROMO_WEBHOOKS_RDKAFKA_SSL_CA_LOCATION", "");
	env_set(&e, "OTHER_VAR", "x");
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_STR(cfg.kafka_brokers, "k1:9092,k2:9092");
	CHECK_INT(cfg.n_event_topics, 3);
	if (cfg.n_event_topics == 3) {
		CHECK_STR(cfg.event_topics[0], "a.events");
		CHECK_STR(cfg.event_topics[1], "b_events");
		CHECK_STR(cfg.event_topics[2], "C-3");
	}
	CHECK_STR(cfg.redis_host, "redis.internal");
	CHECK_INT(cfg.redis_port, 6380);
	CHECK_INT(cfg.redis_db, 5);
	CHECK_STR(cfg.redis_user, "user@x");
	CHECK_STR(cfg.redis_password, "p:ss@w0rd");
	CHECK_STR(cfg.http_host, "::1");
	CHECK_INT(cfg.http_port, 0);
	CHECK_INT(cfg.failure_threshold, 5);
	CHECK_INT(cfg.failure_window_s, 60);
	CHECK_INT(cfg.n_retries, 3);
	CHECK_INT(cfg.retry_schedule_s[2], 3);
	CHECK_INT(cfg.delivery_timeout_ms, 250);
	CHECK_INT(cfg.allow_private_targets, 1);
	CHECK_INT(cfg.scheduler_tick_ms, 100);
	CHECK_INT(cfg.log_level, LOG_LEVEL_DEBUG);
	CHECK_INT(cfg.log_format, LOG_FORMAT_TEXT);
	CHECK_INT(cfg.n_rdkafka, 3);
	if (cfg.n_rdkafka == 3) {
		CHECK_STR(cfg.rdkafka[0].key, "sasl.mechanisms");
		CHECK_STR(cfg.rdkafka[0].value, "PLAIN");
		CHECK_STR(cfg.rdkafka[1].key, "security.protocol");
		CHECK_STR(cfg.rdkafka[1].value, "sasl_ssl");
		CHECK_STR(cfg.rdkafka[2].key, "ssl.ca.location");
		CHECK_STR(cfg.rdkafka[2].value, "");
	}
	config_release(&cfg);
	env_clear(&e);
}

struct redis_case {
	const char *url;
	const char *host;
	int port;
	const char *user;     /* NULL = none */
	const char *password; /* NULL = none */
	int db;
};

static void test_redis_urls(void)
{
	static const struct redis_case good[] = {
		{ "redis://localhost", "localhost", 6379, NULL, NULL, 0 },
		{ "redis://localhost/", "localhost", 6379, NULL, NULL, 0 },
		{ "redis://h:1/15", "h", 1, NULL, NULL, 15 },
		{ "redis://:pw@h", "h", 6379, NULL, "pw", 0 },
		{ "redis://default:pw@h:7000/2", "h", 7000, "default", "pw", 2 },
		{ "redis://:a/b@c@h", "h", 6379, NULL, "a/b@c", 0 },
		{ "redis://[::1]:6390/3", "::1", 6390, NULL, NULL, 3 },
		{ "redis://[fe80::1]", "fe80::1", 6379, NULL, NULL, 0 },
	};
	static const char *const bad[] = {
		"", "localhost:6379", "rediss://h", "http://h", "redis://",
		"redis://:6379", "redis://h:0", "redis://h:65536", "redis://h:x",
		"redis://h:", "redis://h/x", "redis://h/-1", "redis://h/1/2",
		"redis://pw@h", "redis://:@h", "redis://u:@h", "redis://:p%zz@h",
		"redis://:p%0@h", "redis://:p%00x@h", "redis://h?db=1",
		"redis://h#x", "redis://::1:6379", "redis://[::1", "redis://[::1]x",
		"redis://[]:1",
	};
	struct env e = { { NULL }, 0 };
	struct config cfg;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		env_clear(&e);
		env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t");
		env_set(&e, "PROMO_WEBHOOKS_REDIS_URL", good[i].url);
		CHECK_INT(load(&e, &cfg, err, sizeof(err)), 0);
		if (err[0])
			fprintf(stderr, "  %s: %s\n", good[i].url, err);
		CHECK_STR(cfg.redis_host, good[i].host);
		CHECK_INT(cfg.redis_port, good[i].port);
		CHECK_INT(cfg.redis_db, good[i].db);
		if (good[i].user)
			CHECK_STR(cfg.redis_user, good[i].user);
		else
			CHECK(cfg.redis_user == NULL);
		if (good[i].password)
			CHECK_STR(cfg.redis_password, good[i].password);
		else
			CHECK(cfg.redis_password == NULL);
		config_release(&cfg);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		env_clear(&e);
		env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t");
		env_set(&e, "PROMO_WEBHOOKS_REDIS_URL", bad[i]);
		CHECK_INT(load(&e, &cfg, err, sizeof(err)), -1);
		if (strncmp(err, "PROMO_WEBHOOKS_REDIS_URL: ", 26) != 0)
			fprintf(stderr, "  \"%s\" -> \"%s\"\n", bad[i], err);
		CHECK(strncmp(err, "PROMO_WEBHOOKS_REDIS_URL: ", 26) == 0);
		/* The URL may hold a password: never echoed. */
		CHECK(bad[i][0] == '\0' || strstr(err, bad[i]) == NULL);
		CHECK(cfg.kafka_brokers == NULL && cfg.redis_host == NULL);
	}
	env_clear(&e);
}

struct error_case {
	const char *name;  /* variable set to value */
	const char *value;
	const char *want;  /* the exact error line */
};

static const struct error_case error_cases[] = {
	{ "PROMO_WEBHOOKS_KAFKA_BROKERS", "",
	  "PROMO_WEBHOOKS_KAFKA_BROKERS: empty" },
	{ "PROMO_WEBHOOKS_KAFKA_GROUP", "",
	  "PROMO_WEBHOOKS_KAFKA_GROUP: empty" },
	{ "PROMO_WEBHOOKS_EVENT_TOPICS", "",
	  "PROMO_WEBHOOKS_EVENT_TOPICS: empty" },
	{ "PROMO_WEBHOOKS_EVENT_TOPICS", "a,,b",
	  "PROMO_WEBHOOKS_EVENT_TOPICS: empty topic name in list" },
	{ "PROMO_WEBHOOKS_EVENT_TOPICS", "a,",
	  "PROMO_WEBHOOKS_EVENT_TOPICS: empty topic name in list" },
	{ "PROMO_WEBHOOKS_EVENT_TOPICS", "a,b/c",
	  "PROMO_WEBHOOKS_EVENT_TOPICS: not a valid Kafka topic name: \"b/c\"" },
	{ "PROMO_WEBHOOKS_EVENT_TOPICS", "a,b,a",
	  "PROMO_WEBHOOKS_EVENT_TOPICS: topic listed twice: \"a\"" },
	{ "PROMO_WEBHOOKS_EVENT_TOPICS", "..",
	  "PROMO_WEBHOOKS_EVENT_TOPICS: not a valid Kafka topic name: \"..\"" },
	{ "PROMO_WEBHOOKS_EMAIL_TOPIC", "",
	  "PROMO_WEBHOOKS_EMAIL_TOPIC: empty" },
	{ "PROMO_WEBHOOKS_DEAD_LETTER_TOPIC", "dead letters",
	  "PROMO_WEBHOOKS_DEAD_LETTER_TOPIC: not a valid Kafka topic name: "
	  "\"dead letters\"" },
	{ "PROMO_WEBHOOKS_REDIS_URL", "redis://:@h",
	  "PROMO_WEBHOOKS_REDIS_URL: empty password" },
	{ "PROMO_WEBHOOKS_HTTP_LISTEN", "8080",
	  "PROMO_WEBHOOKS_HTTP_LISTEN: expected host:port: \"8080\"" },
	{ "PROMO_WEBHOOKS_HTTP_LISTEN", ":8080",
	  "PROMO_WEBHOOKS_HTTP_LISTEN: empty host: \":8080\"" },
	{ "PROMO_WEBHOOKS_HTTP_LISTEN", "h:99999",
	  "PROMO_WEBHOOKS_HTTP_LISTEN: bad port: \"h:99999\"" },
	{ "PROMO_WEBHOOKS_HTTP_LISTEN", ":::80",
	  "PROMO_WEBHOOKS_HTTP_LISTEN: an IPv6 address must be in brackets: "
	  "\":::80\"" },
	{ "PROMO_WEBHOOKS_ADMIN_TOKEN", "",
	  "PROMO_WEBHOOKS_ADMIN_TOKEN: empty" },
	{ "PROMO_WEBHOOKS_FAILURE_THRESHOLD", "x",
	  "PROMO_WEBHOOKS_FAILURE_THRESHOLD: not a whole number: \"x\"" },
	{ "PROMO_WEBHOOKS_FAILURE_THRESHOLD", "",
	  "PROMO_WEBHOOKS_FAILURE_THRESHOLD: not a whole number: \"\"" },
	{ "PROMO_WEBHOOKS_FAILURE_THRESHOLD", " 3",
	  "PROMO_WEBHOOKS_FAILURE_THRESHOLD: not a whole number: \" 3\"" },
	{ "PROMO_WEBHOOKS_FAILURE_THRESHOLD", "3.0",
	  "PROMO_WEBHOOKS_FAILURE_THRESHOLD: not a whole number: \"3.0\"" },
	{ "PROMO_WEBHOOKS_FAILURE_THRESHOLD", "0",
	  "PROMO_WEBHOOKS_FAILURE_THRESHOLD: out of range (1..1000): 0" },
	{ "PROMO_WEBHOOKS_FAILURE_THRESHOLD", "99999999999999999999999",
	  "PROMO_WEBHOOKS_FAILURE_THRESHOLD: not a whole number: "
	  "\"99999999999999999999999\"" },
	{ "PROMO_WEBHOOKS_FAILURE_WINDOW", "-1",
	  "PROMO_WEBHOOKS_FAILURE_WINDOW: out of range (1..2592000): -1" },
	{ "PROMO_WEBHOOKS_RETRY_SCHEDULE", "60,,600",
	  "PROMO_WEBHOOKS_RETRY_SCHEDULE: not a whole number of seconds: \"\"" },
	{ "PROMO_WEBHOOKS_RETRY_SCHEDULE", "60,0",
	  "PROMO_WEBHOOKS_RETRY_SCHEDULE: retry delay out of range "
	  "(1..2592000): 0" },
	{ "PROMO_WEBHOOKS_RETRY_SCHEDULE", "1m",
	  "PROMO_WEBHOOKS_RETRY_SCHEDULE: not a whole number of seconds: "
	  "\"1m\"" },
	{ "PROMO_WEBHOOKS_RETRY_SCHEDULE", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,"
	  "16,17", "PROMO_WEBHOOKS_RETRY_SCHEDULE: more than 16 retries" },
	{ "PROMO_WEBHOOKS_DELIVERY_TIMEOUT_MS", "0",
	  "PROMO_WEBHOOKS_DELIVERY_TIMEOUT_MS: out of range (1..3600000): 0" },
	{ "PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "yes",
	  "PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS: expected 0 or 1: \"yes\"" },
	{ "PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "",
	  "PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS: expected 0 or 1: \"\"" },
	{ "PROMO_WEBHOOKS_SCHEDULER_TICK_MS", "5",
	  "PROMO_WEBHOOKS_SCHEDULER_TICK_MS: out of range (10..60000): 5" },
	{ "PROMO_WEBHOOKS_MAX_IN_FLIGHT", "0",
	  "PROMO_WEBHOOKS_MAX_IN_FLIGHT: out of range (1..1000000): 0" },
	{ "PROMO_WEBHOOKS_MAX_IN_FLIGHT_PER_TARGET", "abc",
	  "PROMO_WEBHOOKS_MAX_IN_FLIGHT_PER_TARGET: not a whole number: "
	  "\"abc\"" },
	{ "PROMO_WEBHOOKS_TARGET_IDLE_MS", "50",
	  "PROMO_WEBHOOKS_TARGET_IDLE_MS: out of range (100..86400000): 50" },
	{ "PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS", "-5",
	  "PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS: out of range (0..3600000): -5" },
	{ "PROMO_WEBHOOKS_CACHE_REFRESH_MS", "1",
	  "PROMO_WEBHOOKS_CACHE_REFRESH_MS: out of range (10..3600000): 1" },
	{ "PROMO_WEBHOOKS_LOG_LEVEL", "verbose",
	  "PROMO_WEBHOOKS_LOG_LEVEL: expected debug, info, warn or error: "
	  "\"verbose\"" },
	{ "PROMO_WEBHOOKS_LOG_FORMAT", "xml",
	  "PROMO_WEBHOOKS_LOG_FORMAT: expected json or text: \"xml\"" },
	{ "PROMO_WEBHOOKS_LOG_FORMAT", "bad\nline",
	  "PROMO_WEBHOOKS_LOG_FORMAT: expected json or text: \"bad?line\"" },
	{ "PROMO_WEBHOOKS_RDKAFKA_", "x",
	  "PROMO_WEBHOOKS_RDKAFKA_: no librdkafka property after the prefix" },
	{ "PROMO_WEBHOOKS_RDKAFKA_SASL-USERNAME", "x",
	  "PROMO_WEBHOOKS_RDKAFKA_SASL-USERNAME: not a librdkafka property "
	  "name" },
	{ "PROMO_WEBHOOKS_RDKAFKA_GROUP_ID", "x",
	  "PROMO_WEBHOOKS_RDKAFKA_GROUP_ID: group.id is set by the service and "
	  "cannot be overridden" },
	{ "PROMO_WEBHOOKS_RDKAFKA_BOOTSTRAP_SERVERS", "x",
	  "PROMO_WEBHOOKS_RDKAFKA_BOOTSTRAP_SERVERS: bootstrap.servers is set "
	  "by the service and cannot be overridden" },
	{ "PROMO_WEBHOOKS_RDKAFKA_MESSAGE_TIMEOUT_MS", "0",
	  "PROMO_WEBHOOKS_RDKAFKA_MESSAGE_TIMEOUT_MS: 0 (no timeout) would let a "
	  "notice's lease end while the producer still holds it; set a finite "
	  "timeout" },
	{ "PROMO_WEBHOOKS_RDKAFKA_DELIVERY_TIMEOUT_MS", "soon",
	  "PROMO_WEBHOOKS_RDKAFKA_DELIVERY_TIMEOUT_MS: not a whole number of "
	  "milliseconds: \"soon\"" },
	{ "PROMO_WEBHOOKS_RDKAFKA_ENABLE_AUTO_OFFSET_STORE", "true",
	  "PROMO_WEBHOOKS_RDKAFKA_ENABLE_AUTO_OFFSET_STORE: "
	  "enable.auto.offset.store is set by the service and cannot be "
	  "overridden" },
};

static void test_errors(void)
{
	struct env e = { { NULL }, 0 };
	struct config cfg;
	char err[256];
	size_t i;

	/* The admin token is required. */
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), -1);
	CHECK_STR(err, "PROMO_WEBHOOKS_ADMIN_TOKEN: required but not set");

	for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *c = &error_cases[i];

		env_clear(&e);
		if (strcmp(c->name, "PROMO_WEBHOOKS_ADMIN_TOKEN") != 0)
			env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t");
		env_set(&e, c->name, c->value);
		CHECK_INT(load(&e, &cfg, err, sizeof(err)), -1);
		CHECK_STR(err, c->want);
		CHECK(strchr(err, '\n') == NULL);
		/* A failed load leaves nothing to release. */
		CHECK(cfg.admin_token == NULL && cfg.event_topics == NULL &&
		      cfg.rdkafka == NULL);
	}

	/* Empty retry schedule: no retries (set-but-empty is a value). */
	env_clear(&e);
	env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t");
	env_set(&e, "PROMO_WEBHOOKS_RETRY_SCHEDULE", "");
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.n_retries, 0);
	config_release(&cfg);

	/* Exactly CONFIG_MAX_RETRIES is fine. */
	env_clear(&e);
	env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t");
	env_set(&e, "PROMO_WEBHOOKS_RETRY_SCHEDULE",
		"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16");
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.n_retries, CONFIG_MAX_RETRIES);
	CHECK_INT(cfg.retry_schedule_s[15], 16);
	config_release(&cfg);

	/* Booleans: 0/1 and false/true. */
	env_clear(&e);
	env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t");
	env_set(&e, "PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "1");
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.allow_private_targets, 1);
	config_release(&cfg);
	env_clear(&e);
	env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t");
	env_set(&e, "PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "false");
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.allow_private_targets, 0);
	config_release(&cfg);

	/* The admin token is never quoted, even in a long error. */
	env_clear(&e);
	env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t0ps3cret");
	env_set(&e, "PROMO_WEBHOOKS_REDIS_URL", "redis://:t0ps3cret@:1");
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "t0ps3cret") == NULL);

	/* A short err buffer still gets a terminated prefix. */
	env_clear(&e);
	CHECK_INT(load(&e, &cfg, err, 10), -1);
	CHECK_STR(err, "PROMO_WEB");
	env_clear(&e);
}

/* The notice lease follows the producer's message timeout (issue 12
 * part 4): the default, message.timeout.ms, its alias delivery.timeout.ms. */
static void test_notice_lease(void)
{
	struct env e = { { NULL }, 0 };
	struct config cfg;
	char err[256];

	env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t");
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.notice_lease_ms, 300000 + CONFIG_NOTICE_LEASE_MARGIN_MS);
	config_release(&cfg);

	env_set(&e, "PROMO_WEBHOOKS_RDKAFKA_MESSAGE_TIMEOUT_MS", "900000");
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.notice_lease_ms, 900000 + CONFIG_NOTICE_LEASE_MARGIN_MS);
	config_release(&cfg);

	env_clear(&e);
	env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t");
	env_set(&e, "PROMO_WEBHOOKS_RDKAFKA_DELIVERY_TIMEOUT_MS", "5000");
	CHECK_INT(load(&e, &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.notice_lease_ms, 5000 + CONFIG_NOTICE_LEASE_MARGIN_MS);
	config_release(&cfg);
	env_clear(&e);
}

/* names may be NULL (no pass-through) and entries may lack "=value". */
static void test_names(void)
{
	struct env e = { { NULL }, 0 };
	char *names[] = { (char *)(uintptr_t)"PROMO_WEBHOOKS_RDKAFKA_CLIENT_ID",
			  (char *)(uintptr_t)"PROMO_WEBHOOKS_RDKAFKA_UNSET", NULL };
	struct config cfg;
	char err[256];

	env_set(&e, "PROMO_WEBHOOKS_ADMIN_TOKEN", "t");
	env_set(&e, "PROMO_WEBHOOKS_RDKAFKA_CLIENT_ID", "me");
	CHECK_INT(config_load(&cfg, env_lookup, &e, NULL, err, sizeof(err)), 0);
	CHECK_INT(cfg.n_rdkafka, 0);
	config_release(&cfg);
	CHECK_INT(config_load(&cfg, env_lookup, &e, names, err, sizeof(err)), 0);
	CHECK_INT(cfg.n_rdkafka, 1);
	if (cfg.n_rdkafka == 1) {
		CHECK_STR(cfg.rdkafka[0].key, "client.id");
		CHECK_STR(cfg.rdkafka[0].value, "me");
	}
	config_release(&cfg);
	env_clear(&e);
}

int main(void)
{
	test_defaults();
	test_values();
	test_redis_urls();
	test_errors();
	test_names();
	test_notice_lease();
	return TEST_DONE();
}
