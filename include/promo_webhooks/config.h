/*
 * config: the service's settings, parsed once from the environment into an
 * immutable struct (contract section 8). Pure: the environment is read
 * through a lookup function so tests can pass their own.
 *
 * Unset means the default; set-but-empty is a value (and usually an error,
 * except PROMO_WEBHOOKS_RETRY_SCHEDULE where empty means no retries).
 * Any librdkafka property passes through as PROMO_WEBHOOKS_RDKAFKA_<NAME>,
 * where NAME is the property in upper case with '.' written as '_'
 * (PROMO_WEBHOOKS_RDKAFKA_SASL_MECHANISMS=PLAIN -> sasl.mechanisms=PLAIN).
 */
#ifndef PROMO_WEBHOOKS_CONFIG_H
#define PROMO_WEBHOOKS_CONFIG_H

#include <stddef.h>

#include "promo_webhooks/log.h"

#define CONFIG_MAX_RETRIES 16

/* Returns the value of the variable, or NULL when it is unset. */
typedef const char *config_lookup_fn(void *arg, const char *name);

/* Test-only fault points (PROMO_WEBHOOKS_TEST_FAULT), so tests can kill the
 * process at a moment no signal could reliably hit. */
enum config_fault {
	CONFIG_FAULT_NONE = 0,
	CONFIG_FAULT_EXIT_AFTER_DISABLE, /* _exit(137) right after the failure
					  * rule disabled a webhook, before
					  * its notice is published */
	CONFIG_FAULT_EXIT_AFTER_CLAIM,   /* _exit(137) right after a scheduler
					  * pass claimed a period occurrence,
					  * before it is delivered */
};

struct config_kv {
	char *key;   /* librdkafka property name, e.g. "sasl.mechanisms" */
	char *value;
};

struct config {
	char *kafka_brokers;        /* PROMO_WEBHOOKS_KAFKA_BROKERS */
	char *kafka_group;          /* PROMO_WEBHOOKS_KAFKA_GROUP */
	char **event_topics;        /* PROMO_WEBHOOKS_EVENT_TOPICS, split on ',' */
	size_t n_event_topics;      /* >= 1 */
	char *email_topic;          /* PROMO_WEBHOOKS_EMAIL_TOPIC */
	char *dead_letter_topic;    /* PROMO_WEBHOOKS_DEAD_LETTER_TOPIC */

	char *redis_host;           /* from PROMO_WEBHOOKS_REDIS_URL */
	int redis_port;
	char *redis_password;       /* NULL when the URL has none */
	int redis_db;
	char *redis_user;           /* ACL user (AUTH user password), NULL = none */

	char *http_host;            /* from PROMO_WEBHOOKS_HTTP_LISTEN */
	int http_port;              /* 0 picks a free port (tests) */
	char *admin_token;          /* PROMO_WEBHOOKS_ADMIN_TOKEN, required */

	long failure_threshold;     /* PROMO_WEBHOOKS_FAILURE_THRESHOLD, >= 1 */
	long failure_window_s;      /* PROMO_WEBHOOKS_FAILURE_WINDOW, >= 1 */
	long retry_schedule_s[CONFIG_MAX_RETRIES]; /* PROMO_WEBHOOKS_RETRY_SCHEDULE */
	size_t n_retries;           /* 0 = no retries */
	long delivery_timeout_ms;   /* PROMO_WEBHOOKS_DELIVERY_TIMEOUT_MS */
	long retry_lease_ms;        /* PROMO_WEBHOOKS_RETRY_LEASE_MS: a claimed
				     * retry's lease, renewed when its attempt
				     * starts; 0 = the delivery timeout + 30 s */
	int allow_private_targets;  /* PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS, 0/1 */
	long scheduler_tick_ms;     /* PROMO_WEBHOOKS_SCHEDULER_TICK_MS */
	long promotion_retention_s; /* PROMO_WEBHOOKS_PROMOTION_RETENTION: how
				     * long a promotion tombstone (or a state
				     * whose dates passed) is kept (604800) */

	/* The project's own additions (same prefix): */
	long max_in_flight;         /* PROMO_WEBHOOKS_MAX_IN_FLIGHT (4096) */
	long max_in_flight_per_target; /* PROMO_WEBHOOKS_MAX_IN_FLIGHT_PER_TARGET (256) */
	long target_idle_ms;        /* PROMO_WEBHOOKS_TARGET_IDLE_MS (300000): a
				     * delivery target idle this long is freed */
	long shutdown_grace_ms;     /* PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS (20000) */
	long cache_refresh_ms;      /* PROMO_WEBHOOKS_CACHE_REFRESH_MS (500) */
	enum log_level log_level;   /* PROMO_WEBHOOKS_LOG_LEVEL (info) */
	enum log_format log_format; /* PROMO_WEBHOOKS_LOG_FORMAT (json|text) */
	enum config_fault test_fault; /* PROMO_WEBHOOKS_TEST_FAULT (none) */

	struct config_kv *rdkafka;  /* PROMO_WEBHOOKS_RDKAFKA_* pass-through */
	size_t n_rdkafka;

	/* Derived: how long a claimed notice stays leased. The producer may
	 * hold a message for its message.timeout.ms (alias delivery.timeout.ms,
	 * 300000 by default) before it reports it; the lease is that plus
	 * CONFIG_NOTICE_LEASE_MARGIN_MS, so that no other replica publishes a
	 * notice this one may still deliver. A timeout of 0 (none) is refused
	 * at start. */
	long notice_lease_ms;
};

/* The notice lease's margin over the producer's message timeout: the
 * acknowledgement's Redis round trip and clock skew between replicas. */
#define CONFIG_NOTICE_LEASE_MARGIN_MS 30000
/* librdkafka's default message.timeout.ms. */
#define CONFIG_PRODUCER_TIMEOUT_DEFAULT_MS 300000

/*
 * Fills *cfg from the environment seen through lookup. names lists every
 * variable name present in the environment (NULL-terminated, like environ
 * entries "NAME=value"), used to find PROMO_WEBHOOKS_RDKAFKA_*; it may be
 * NULL. Returns 0, or -1 with err holding one line that names the variable
 * ("PROMO_WEBHOOKS_FAILURE_THRESHOLD: not a whole number: \"x\"").
 */
/*
 * The librdkafka properties a PROMO_WEBHOOKS_RDKAFKA_* variable may not
 * set, NULL-terminated: the service sets them itself, and a pass-through
 * value would silently break a dedicated variable, the at-least-once
 * delivery or the loop integration. config_load refuses them (exit 2
 * naming the variable); kafka.c relies on that.
 */
extern const char *const config_rdkafka_refused[];

int config_load(struct config *cfg, config_lookup_fn *lookup, void *arg,
		char *const *names, char *err, size_t errlen);
/* Reads the process environment (getenv and environ). */
int config_load_env(struct config *cfg, char *err, size_t errlen);
void config_release(struct config *cfg);

#endif
