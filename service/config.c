/*
 * config: the service's settings from the environment (contract section 8),
 * parsed once into an immutable struct config. Pure: the environment is
 * seen through a lookup function.
 *
 * Every variable is one row of config_vars (name, kind, default, bounds,
 * target field); defaults go through the same parsers as given values. An
 * error is one line that starts with the variable's name. Values of secret
 * variables (the admin token, the Redis URL with its password) are never
 * quoted in an error.
 */
#include "promo_webhooks/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "PROMO_WEBHOOKS_"
#define RDKAFKA_PREFIX PREFIX "RDKAFKA_"
#define TOPIC_MAX 249 /* Kafka's limit on a topic name */

enum config_kind {
	KIND_STRING,     /* non-empty string (char *) */
	KIND_TOPIC,      /* one Kafka topic name (char *) */
	KIND_TOPICS,     /* comma-separated topic names (event_topics) */
	KIND_REDIS_URL,  /* redis://... (the redis_* fields) */
	KIND_LISTEN,     /* host:port (http_host, http_port) */
	KIND_LONG,       /* whole number in [min, max] (long) */
	KIND_BOOL,       /* 0/1/true/false (int) */
	KIND_RETRIES,    /* comma-separated seconds in [min, max] (retry_*) */
	KIND_LOG_LEVEL,  /* debug|info|warn|error (enum log_level) */
	KIND_LOG_FORMAT, /* json|text (enum log_format) */
	KIND_FAULT,      /* none|exit-after-disable|exit-after-claim
			  * (enum config_fault) */
};

struct config_var {
	const char *name;
	enum config_kind kind;
	const char *def;  /* NULL: the variable is required */
	long min, max;    /* bounds of KIND_LONG and of each KIND_RETRIES item */
	size_t field;     /* offsetof the target (simple kinds only) */
	int secret;       /* never quote the value in an error */
};

#define FIELD(f) offsetof(struct config, f)

static const struct config_var config_vars[] = {
	{ PREFIX "KAFKA_BROKERS", KIND_STRING, "localhost:9092", 0, 0,
	  FIELD(kafka_brokers), 0 },
	{ PREFIX "KAFKA_GROUP", KIND_STRING, "promo-webhooks", 0, 0,
	  FIELD(kafka_group), 0 },
	{ PREFIX "EVENT_TOPICS", KIND_TOPICS, "promo.events", 0, 0, 0, 0 },
	{ PREFIX "EMAIL_TOPIC", KIND_TOPIC, "promo.email", 0, 0,
	  FIELD(email_topic), 0 },
	{ PREFIX "DEAD_LETTER_TOPIC", KIND_TOPIC, "promo.events.dead-letter", 0,
	  0, FIELD(dead_letter_topic), 0 },
	{ PREFIX "REDIS_URL", KIND_REDIS_URL, "redis://127.0.0.1:6379/0", 0, 0,
	  0, 1 },
	{ PREFIX "HTTP_LISTEN", KIND_LISTEN, "0.0.0.0:8080", 0, 0, 0, 0 },
	{ PREFIX "ADMIN_TOKEN", KIND_STRING, NULL, 0, 0, FIELD(admin_token), 1 },
	{ PREFIX "FAILURE_THRESHOLD", KIND_LONG, "3", 1, 1000,
	  FIELD(failure_threshold), 0 },
	{ PREFIX "FAILURE_WINDOW", KIND_LONG, "3600", 1, 30L * 86400,
	  FIELD(failure_window_s), 0 },
	{ PREFIX "RETRY_SCHEDULE", KIND_RETRIES, "60,600", 1, 30L * 86400, 0, 0 },
	{ PREFIX "DELIVERY_TIMEOUT_MS", KIND_LONG, "10000", 1, 3600000,
	  FIELD(delivery_timeout_ms), 0 },
	{ PREFIX "RETRY_LEASE_MS", KIND_LONG, "0", 0, 86400000,
	  FIELD(retry_lease_ms), 0 },
	{ PREFIX "ALLOW_PRIVATE_TARGETS", KIND_BOOL, "0", 0, 0,
	  FIELD(allow_private_targets), 0 },
	{ PREFIX "SCHEDULER_TICK_MS", KIND_LONG, "1000", 10, 60000,
	  FIELD(scheduler_tick_ms), 0 },
	{ PREFIX "PROMOTION_RETENTION", KIND_LONG, "604800", 3600, 366L * 86400,
	  FIELD(promotion_retention_s), 0 },
	{ PREFIX "MAX_IN_FLIGHT", KIND_LONG, "4096", 1, 1000000,
	  FIELD(max_in_flight), 0 },
	{ PREFIX "MAX_IN_FLIGHT_PER_TARGET", KIND_LONG, "256", 1, 1000000,
	  FIELD(max_in_flight_per_target), 0 },
	{ PREFIX "TARGET_IDLE_MS", KIND_LONG, "300000", 100, 86400000,
	  FIELD(target_idle_ms), 0 },
	{ PREFIX "SHUTDOWN_GRACE_MS", KIND_LONG, "20000", 0, 3600000,
	  FIELD(shutdown_grace_ms), 0 },
	{ PREFIX "CACHE_REFRESH_MS", KIND_LONG, "500", 10, 3600000,
	  FIELD(cache_refresh_ms), 0 },
	{ PREFIX "LOG_LEVEL", KIND_LOG_LEVEL, "info", 0, 0, FIELD(log_level), 0 },
	{ PREFIX "LOG_FORMAT", KIND_LOG_FORMAT, "json", 0, 0, FIELD(log_format),
	  0 },
	{ PREFIX "TEST_FAULT", KIND_FAULT, "none", 0, 0, FIELD(test_fault), 0 },
};

/* librdkafka properties the service sets itself (config.h). */
const char *const config_rdkafka_refused[] = {
	"bootstrap.servers",             /* PROMO_WEBHOOKS_KAFKA_BROKERS */
	"metadata.broker.list",          /* alias of bootstrap.servers */
	"group.id",                      /* PROMO_WEBHOOKS_KAFKA_GROUP */
	"enable.auto.offset.store",      /* offsets are stored only when done */
	"enable.auto.commit",            /* auto-commit commits what is stored */
	"partition.assignment.strategy", /* eager range (README) */
	"log.queue",                     /* librdkafka's logs go through log.c */
	"enable.idempotence",            /* notices are produced idempotently */
	NULL,
};

static void fail(char *err, size_t errlen, const char *name, const char *fmt,
		 ...) __attribute__((format(printf, 4, 5)));

static void fail(char *err, size_t errlen, const char *name, const char *fmt,
		 ...)
{
	va_list ap;
	int n;

	n = snprintf(err, errlen, "%s: ", name);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* A value fit to quote in a one-line error: printable ASCII, short. */
static const char *quote(const struct config_var *v, const char *s, size_t len,
			 char *out, size_t outlen)
{
	size_t i, n = 0;

	if (v->secret)
		return "(hidden)";
	out[n++] = '"';
	for (i = 0; i < len && i < 64 && n + 5 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];

		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (i < len && n + 5 < outlen) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

static char *dup_range(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* A whole decimal number, nothing around it. */
static int parse_long(const char *s, size_t len, long *out)
{
	char tmp[32], *end;
	size_t i = 0;
	long v;

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	if (s[0] == '-')
		i = 1;
	if (i == len)
		return -1;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
	}
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	v = strtol(tmp, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int topic_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > TOPIC_MAX)
		return 0;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Calls item(s, len) for each comma-separated item with surrounding spaces
 * trimmed; stops at the first that fails. */
static int split_items(const char *s, int (*item)(void *, const char *, size_t),
		       void *arg)
{
	const char *p = s;

	for (;;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		const char *q = p;

		while (len && *q == ' ') {
			q++;
			len--;
		}
		while (len && q[len - 1] == ' ')
			len--;
		if (item(arg, q, len) < 0)
			return -1;
		if (!e)
			return 0;
		p = e + 1;
	}
}

struct parse_ctx {
	struct config *cfg;
	const struct config_var *v;
	char *err;
	size_t errlen;
};

static int topics_item(void *arg, const char *s, size_t len)
{
	struct parse_ctx *pc = arg;
	struct config *cfg = pc->cfg;
	char **nt, q[80];
	size_t i;

	if (len == 0) {
		fail(pc->err, pc->errlen, pc->v->name, "empty topic name in list");
		return -1;
	}
	if (!topic_valid(s, len)) {
		fail(pc->err, pc->errlen, pc->v->name,
		     "not a valid Kafka topic name: %s",
		     quote(pc->v, s, len, q, sizeof(q)));
		return -1;
	}
	for (i = 0; i < cfg->n_event_topics; i++) {
		if (strlen(cfg->event_topics[i]) == len &&
		    memcmp(cfg->event_topics[i], s, len) == 0) {
			fail(pc->err, pc->errlen, pc->v->name,
			     "topic listed twice: %s",
			     quote(pc->v, s, len, q, sizeof(q)));
			return -1;
		}
	}
	nt = realloc(cfg->event_topics, (cfg->n_event_topics + 1) * sizeof(*nt));
	if (!nt)
		goto oom;
	cfg->event_topics = nt;
	nt[cfg->n_event_topics] = dup_range(s, len);
	if (!nt[cfg->n_event_topics])
		goto oom;
	cfg->n_event_topics++;
	return 0;
oom:
	fail(pc->err, pc->errlen, pc->v->name, "out of memory");
	return -1;
}

static int retries_item(void *arg, const char *s, size_t len)
{
	struct parse_ctx *pc = arg;
	struct config *cfg = pc->cfg;
	char q[80];
	long v;

	if (cfg->n_retries == CONFIG_MAX_RETRIES) {
		fail(pc->err, pc->errlen, pc->v->name, "more than %d retries",
		     CONFIG_MAX_RETRIES);
		return -1;
	}
	if (parse_long(s, len, &v) < 0) {
		fail(pc->err, pc->errlen, pc->v->name,
		     "not a whole number of seconds: %s",
		     quote(pc->v, s, len, q, sizeof(q)));
		return -1;
	}
	if (v < pc->v->min || v > pc->v->max) {
		fail(pc->err, pc->errlen, pc->v->name,
		     "retry delay out of range (%ld..%ld): %ld", pc->v->min,
		     pc->v->max, v);
		return -1;
	}
	cfg->retry_schedule_s[cfg->n_retries++] = v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..len) into a new string; NULL when malformed (or out
 * of memory, or it would contain a NUL). */
static char *percent_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t i, n = 0;

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] != '%') {
			out[n++] = s[i];
			continue;
		}
		if (len - i < 3)
			goto bad;
		if (hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
			goto bad;
		out[n] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
		if (out[n] == '\0')
			goto bad;
		n++;
		i += 2;
	}
	out[n] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Parses "host:port" or "[v6]:port" (port required when need_port) into a
 * new host string and *port. Returns 0, or -1 with *why set. */
static int parse_hostport(const char *s, size_t len, int need_port,
			  int min_port, char **host, int *port,
			  const char **why)
{
	const char *h = s, *colon = NULL;
	size_t hlen;
	long v;

	if (len && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close) {
			*why = "unclosed '[' in host";
			return -1;
		}
		h = s + 1;
		hlen = (size_t)(close - h);
		if (close + 1 < s + len) {
			if (close[1] != ':') {
				*why = "expected ':' after ']'";
				return -1;
			}
			colon = close + 1;
		}
	} else {
		const char *p;

		for (p = s; p < s + len; p++) {
			if (*p == ':')
				colon = p;
		}
		hlen = colon ? (size_t)(colon - s) : len;
		if (colon && memchr(s, ':', hlen)) {
			*why = "an IPv6 address must be in brackets";
			return -1;
		}
	}
	if (hlen == 0) {
		*why = "empty host";
		return -1;
	}
	if (colon) {
		size_t plen = len - (size_t)(colon + 1 - s);

		if (parse_long(colon + 1, plen, &v) < 0 || v < min_port ||
		    v > 65535) {
			*why = "bad port";
			return -1;
		}
		*port = (int)v;
	} else if (need_port) {
		*why = "expected host:port";
		return -1;
	}
	*host = dup_range(h, hlen);
	if (!*host) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

/*
 * redis://[[user]:password@]host[:port][/db]. The user and password may be
 * percent-encoded. Errors never repeat the URL: it may hold a password.
 */
static int parse_redis_url(struct config *cfg, const char *url,
			   const char **why)
{
	static const char scheme[] = "redis://";
	const char *p, *slash, *at, *end;
	long db = 0;

	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
		*why = "expected redis://[[user]:password@]host[:port][/db]";
		return -1;
	}
	p = url + sizeof(scheme) - 1;
	if (strpbrk(p, "?#")) {
		*why = "query and fragment are not supported";
		return -1;
	}
	end = p + strlen(p);
	/* The last '@' ends the credentials: a database number has none, and
	 * a password with an unencoded '@' or '/' still parses. */
	at = strrchr(p, '@');
	slash = strchr(at ? at + 1 : p, '/');
	if (!slash)
		slash = end;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));

		if (!colon) {
			*why = "credentials must be :password or user:password";
			return -1;
		}
		if (colon == at - 1) {
			*why = "empty password";
			return -1;
		}
		if (colon > p) {
			cfg->redis_user = percent_decode(p, (size_t)(colon - p));
			if (!cfg->redis_user) {
				*why = "bad percent-encoding in user";
				return -1;
			}
		}
		cfg->redis_password =
			percent_decode(colon + 1, (size_t)(at - colon - 1));
		if (!cfg->redis_password) {
			*why = "bad percent-encoding in password";
			return -1;
		}
		p = at + 1;
	}
	cfg->redis_port = 6379;
	if (parse_hostport(p, (size_t)(slash - p), 0, 1, &cfg->redis_host,
			   &cfg->redis_port, why) < 0)
		return -1;
	if (slash < end && slash + 1 < end) {
		if (parse_long(slash + 1, (size_t)(end - slash - 1), &db) < 0 ||
		    db < 0 || db > INT_MAX) {
			*why = "bad database number";
			return -1;
		}
	}
	cfg->redis_db = (int)db;
	return 0;
}

static int parse_var(struct config *cfg, const struct config_var *v,
		     const char *val, char *err, size_t errlen)
{
	char *base = (char *)cfg + v->field;
	struct parse_ctx pc = { cfg, v, err, errlen };
	const char *why = NULL;
	char q[80];
	long n;

	switch (v->kind) {
	case KIND_STRING:
	case KIND_TOPIC:
		if (val[0] == '\0') {
			fail(err, errlen, v->name, "empty");
			return -1;
		}
		if (v->kind == KIND_TOPIC && !topic_valid(val, strlen(val))) {
			fail(err, errlen, v->name,
			     "not a valid Kafka topic name: %s",
			     quote(v, val, strlen(val), q, sizeof(q)));
			return -1;
		}
		*(char **)(void *)base = dup_range(val, strlen(val));
		if (!*(char **)(void *)base) {
			fail(err, errlen, v->name, "out of memory");
			return -1;
		}
		return 0;
	case KIND_TOPICS:
		if (val[0] == '\0') {
			fail(err, errlen, v->name, "empty");
			return -1;
		}
		return split_items(val, topics_item, &pc);
	case KIND_RETRIES:
		/* Empty is a value here: no retries. */
		if (val[0] == '\0')
			return 0;
		return split_items(val, retries_item, &pc);
	case KIND_REDIS_URL:
		if (parse_redis_url(cfg, val, &why) < 0) {
			fail(err, errlen, v->name, "%s", why);
			return -1;
		}
		return 0;
	case KIND_LISTEN:
		if (parse_hostport(val, strlen(val), 1, 0, &cfg->http_host,
				   &cfg->http_port, &why) < 0) {
			fail(err, errlen, v->name, "%s: %s", why,
			     quote(v, val, strlen(val), q, sizeof(q)));
			return -1;
		}
		return 0;
	case KIND_LONG:
		if (parse_long(val, strlen(val), &n) < 0) {
			fail(err, errlen, v->name, "not a whole number: %s",
			     quote(v, val, strlen(val), q, sizeof(q)));
			return -1;
		}
		if (n < v->min || n > v->max) {
			fail(err, errlen, v->name, "out of range (%ld..%ld): %ld",
			     v->min, v->max, n);
			return -1;
		}
		*(long *)(void *)base = n;
		return 0;
	case KIND_BOOL:
		if (strcmp(val, "1") == 0 || strcmp(val, "true") == 0) {
			*(int *)(void *)base = 1;
		} else if (strcmp(val, "0") == 0 || strcmp(val, "false") == 0) {
			*(int *)(void *)base = 0;
		} else {
			fail(err, errlen, v->name, "expected 0 or 1: %s",
			     quote(v, val, strlen(val), q, sizeof(q)));
			return -1;
		}
		return 0;
	case KIND_LOG_LEVEL:
		if (log_level_parse(val, (enum log_level *)(void *)base) < 0) {
			fail(err, errlen, v->name,
			     "expected debug, info, warn or error: %s",
			     quote(v, val, strlen(val), q, sizeof(q)));
			return -1;
		}
		return 0;
	case KIND_LOG_FORMAT:
		if (strcmp(val, "json") == 0) {
			*(enum log_format *)(void *)base = LOG_FORMAT_JSON;
		} else if (strcmp(val, "text") == 0) {
			*(enum log_format *)(void *)base = LOG_FORMAT_TEXT;
		} else {
			fail(err, errlen, v->name, "expected json or text: %s",
			     quote(v, val, strlen(val), q, sizeof(q)));
			return -1;
		}
		return 0;
	case KIND_FAULT:
		if (strcmp(val, "none") == 0) {
			*(enum config_fault *)(void *)base = CONFIG_FAULT_NONE;
		} else if (strcmp(val, "exit-after-disable") == 0) {
			*(enum config_fault *)(void *)base =
				CONFIG_FAULT_EXIT_AFTER_DISABLE;
		} else if (strcmp(val, "exit-after-claim") == 0) {
			*(enum config_fault *)(void *)base =
				CONFIG_FAULT_EXIT_AFTER_CLAIM;
		} else {
			fail(err, errlen, v->name,
			     "expected none, exit-after-disable or "
			     "exit-after-claim: %s",
			     quote(v, val, strlen(val), q, sizeof(q)));
			return -1;
		}
		return 0;
	}
	fail(err, errlen, v->name, "unknown kind");
	return -1;
}

/* One PROMO_WEBHOOKS_RDKAFKA_<NAME> variable (entry is "NAME" or
 * "NAME=value" as in environ) into cfg->rdkafka. */
static int add_rdkafka(struct config *cfg, const char *entry,
		       config_lookup_fn *lookup, void *arg, char *err,
		       size_t errlen)
{
	const char *eq = strchr(entry, '=');
	size_t len = eq ? (size_t)(eq - entry) : strlen(entry);
	size_t plen = sizeof(RDKAFKA_PREFIX) - 1, i;
	char name[256];
	const char *value;
	struct config_kv *nkv;
	char *key, *val;

	if (len >= sizeof(name)) {
		snprintf(err, errlen, "%.*s...: name too long", 64, entry);
		return -1;
	}
	memcpy(name, entry, len);
	name[len] = '\0';
	value = lookup(arg, name);
	if (!value)
		return 0;
	if (len == plen) {
		fail(err, errlen, name, "no librdkafka property after the prefix");
		return -1;
	}
	key = dup_range(name + plen, len - plen);
	if (!key)
		goto oom;
	for (i = 0; key[i]; i++) {
		char c = key[i];

		if (c >= 'A' && c <= 'Z')
			key[i] = (char)(c - 'A' + 'a');
		else if (c == '_')
			key[i] = '.';
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
			free(key);
			fail(err, errlen, name, "not a librdkafka property name");
			return -1;
		}
	}
	for (i = 0; config_rdkafka_refused[i]; i++) {
		if (strcmp(key, config_rdkafka_refused[i]) == 0) {
			fail(err, errlen, name,
			     "%s is set by the service and cannot be overridden",
			     key);
			free(key);
			return -1;
		}
	}
	val = dup_range(value, strlen(value));
	nkv = realloc(cfg->rdkafka, (cfg->n_rdkafka + 1) * sizeof(*nkv));
	if (!val || !nkv) {
		free(key);
		free(val);
		if (nkv)
			cfg->rdkafka = nkv;
		goto oom;
	}
	cfg->rdkafka = nkv;
	nkv[cfg->n_rdkafka].key = key;
	nkv[cfg->n_rdkafka].value = val;
	cfg->n_rdkafka++;
	return 0;
oom:
	fail(err, errlen, name, "out of memory");
	return -1;
}

/* The notice lease from the producer's message timeout (config.h). The
 * last of message.timeout.ms and delivery.timeout.ms set wins, as in
 * librdkafka, which applies properties in order. */
static int derive_notice_lease(struct config *cfg, char *err, size_t errlen)
{
	long timeout = CONFIG_PRODUCER_TIMEOUT_DEFAULT_MS;
	char name[256];
	size_t i, j;

	for (i = 0; i < cfg->n_rdkafka; i++) {
		const struct config_kv *kv = &cfg->rdkafka[i];
		char *end;
		long v;

		if (strcmp(kv->key, "message.timeout.ms") != 0 &&
		    strcmp(kv->key, "delivery.timeout.ms") != 0)
			continue;
		snprintf(name, sizeof(name), "%s", RDKAFKA_PREFIX);
		for (j = 0; kv->key[j] && strlen(name) + 1 < sizeof(name); j++) {
			size_t n = strlen(name);
			char c = kv->key[j];

			name[n] = c == '.' ? '_' : (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
			name[n + 1] = '\0';
		}
		errno = 0;
		v = strtol(kv->value, &end, 10);
		if (errno || end == kv->value || *end || v < 0 || v > 2147483647L) {
			fail(err, errlen, name, "not a whole number of milliseconds: \"%s\"",
			     kv->value);
			return -1;
		}
		if (v == 0) {
			fail(err, errlen, name,
			     "0 (no timeout) would let a notice's lease end while the producer still holds it; set a finite timeout");
			return -1;
		}
		timeout = v;
	}
	cfg->notice_lease_ms = timeout + CONFIG_NOTICE_LEASE_MARGIN_MS;
	return 0;
}

int config_load(struct config *cfg, config_lookup_fn *lookup, void *arg,
		char *const *names, char *err, size_t errlen)
{
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < sizeof(config_vars) / sizeof(config_vars[0]); i++) {
		const struct config_var *v = &config_vars[i];
		const char *val = lookup(arg, v->name);

		if (!val)
			val = v->def;
		if (!val) {
			fail(err, errlen, v->name, "required but not set");
			goto fail;
		}
		if (parse_var(cfg, v, val, err, errlen) < 0)
			goto fail;
	}
	for (i = 0; names && names[i]; i++) {
		if (strncmp(names[i], RDKAFKA_PREFIX, sizeof(RDKAFKA_PREFIX) - 1) != 0)
			continue;
		if (add_rdkafka(cfg, names[i], lookup, arg, err, errlen) < 0)
			goto fail;
	}
	if (derive_notice_lease(cfg, err, errlen) < 0)
		goto fail;
	return 0;
fail:
	config_release(cfg);
	return -1;
}

static const char *env_lookup(void *arg, const char *name)
{
	(void)arg;
	return getenv(name);
}

/* POSIX declares environ but no header does without _GNU_SOURCE. */
extern char **environ;

int config_load_env(struct config *cfg, char *err, size_t errlen)
{
	return config_load(cfg, env_lookup, NULL, environ, err, errlen);
}

void config_release(struct config *cfg)
{
	size_t i;

	free(cfg->kafka_brokers);
	free(cfg->kafka_group);
	for (i = 0; i < cfg->n_event_topics; i++)
		free(cfg->event_topics[i]);
	free(cfg->event_topics);
	free(cfg->email_topic);
	free(cfg->dead_letter_topic);
	free(cfg->redis_host);
	free(cfg->redis_password);
	free(cfg->redis_user);
	free(cfg->http_host);
	free(cfg->admin_token);
	for (i = 0; i < cfg->n_rdkafka; i++) {
		free(cfg->rdkafka[i].key);
		free(cfg->rdkafka[i].value);
	}
	free(cfg->rdkafka);
	memset(cfg, 0, sizeof(*cfg));
}
