/*
 * The store's scripts are cluster-ready: an integration test against a real
 * Redis Cluster (three masters on loopback, tests/scripts/redis-cluster.sh;
 * CLUSTER_PORTS names them) and a single redis-server (REDIS_URL).
 *
 * One scenario, through the store's own API (so the keys are the ones the
 * service builds), runs once against the single server and once against
 * the cluster node that owns the slot of the hash tag {pw} (found by
 * asking every node: the others answer MOVED). It calls every script the
 * service has (checked against the embedded list) and every plain command.
 * Then:
 *   - each step answers the same on both, and every step succeeds (a
 *     CROSSSLOT or MOVED would end it STORE_UNAVAILABLE);
 *   - the data left behind is the same on both, key by key;
 *   - MONITOR on the cluster node shows, for every command a script ran,
 *     that each key it touched (COMMAND GETKEYS) was one the script was
 *     given in KEYS: keys are declared, not built inside the scripts.
 */
#include "promo_webhooks/buf.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/store_outcomes.h"
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/webhook.h"
#include "testutil.h"
#include "itest.h"

#include <signal.h>
#include <strings.h>

#include "lua_scripts.h"

#define SINGLE_DB 13
#define T0 1748856612345LL       /* the scenario's "now" (Unix ms) */
#define HOUR (3600LL * 1000)
#define W1 "c1000000000000000000000000000001"
#define W2 "c2000000000000000000000000000002"
#define W3 "c3000000000000000000000000000003"

static struct event_base *base;
static struct buf log_text;  /* the scenario's transcript */
static int step_done;

/* ---- the transcript: one line per step ---- */

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&log_text, fmt, ap);
	va_end(ap);
	buf_addc(&log_text, '\n');
}

static void wait_step(const char *name, int started)
{
	if (started < 0) {
		note("%s: not started", name);
		return;
	}
	itest_wait_done(base, &step_done, 10000);
	step_done = 0;
}

static void on_write(void *arg, enum store_status status, int64_t version)
{
	note("%s: %s %lld", (const char *)arg, store_status_name(status),
	     (long long)version);
	step_done = 1;
}

static void on_webhook(void *arg, enum store_status status,
		       const struct webhook *wh)
{
	note("%s: %s %s enabled=%d rev=%lld", (const char *)arg,
	     store_status_name(status), wh ? wh->target : "-",
	     wh ? wh->enabled : -1, wh ? (long long)wh->revision : -1LL);
	step_done = 1;
}

static void on_list(void *arg, enum store_status status,
		    const struct webhook *hooks, size_t n)
{
	size_t i;

	note("%s: %s n=%zu", (const char *)arg, store_status_name(status), n);
	for (i = 0; i < n; i++)
		note("  %s enabled=%d", hooks[i].id, hooks[i].enabled);
	step_done = 1;
}

static void on_settings(void *arg, enum store_status status,
			const struct company_settings *s)
{
	note("%s: %s", (const char *)arg, store_status_name(status));
	(void)s;
	step_done = 1;
}

static void on_snapshot(void *arg, enum store_status status,
			struct store_snapshot *snap)
{
	note("%s: %s version=%lld hooks=%zu companies=%zu", (const char *)arg,
	     store_status_name(status), snap ? (long long)snap->version : -1LL,
	     snap ? snap->n_hooks : 0, snap ? snap->n_companies : 0);
	store_snapshot_free(snap);
	step_done = 1;
}

static void on_version(void *arg, enum store_status status, int64_t version)
{
	note("%s: %s %lld", (const char *)arg, store_status_name(status),
	     (long long)version);
	step_done = 1;
}

static void on_failure(void *arg, enum store_status status,
		       enum store_failure_result result)
{
	note("%s: %s result=%d", (const char *)arg, store_status_name(status),
	     (int)result);
	step_done = 1;
}

static void on_attempts(void *arg, enum store_status status,
			const char *const *items, const size_t *lens, size_t n)
{
	size_t i;

	note("%s: %s n=%zu", (const char *)arg, store_status_name(status), n);
	for (i = 0; i < n; i++)
		note("  %.*s", (int)lens[i], items[i]);
	step_done = 1;
}

static char claimed_id[256]; /* the last claimed notice, for the ack */

static void on_claim(void *arg, enum store_status status,
		     const struct store_claimed *items, size_t n)
{
	size_t i;

	note("%s: %s n=%zu", (const char *)arg, store_status_name(status), n);
	for (i = 0; i < n; i++) {
		note("  %s key=%s %.*s", items[i].id, items[i].key ? items[i].key : "-",
		     (int)items[i].payload_len, items[i].payload);
		snprintf(claimed_id, sizeof(claimed_id), "%s", items[i].id);
	}
	step_done = 1;
}

static void on_counts(void *arg, enum store_status status, int64_t retries,
		      int64_t notices)
{
	note("%s: %s retries=%lld notices=%lld", (const char *)arg,
	     store_status_name(status), (long long)retries, (long long)notices);
	step_done = 1;
}

static void on_tick(void *arg, enum store_status status,
		    const struct store_tick_result *r)
{
	note("%s: %s claimed=%zu pruned=%zu skipped=%d more=%d", (const char *)arg,
	     store_status_name(status), r->claimed, r->pruned, r->skipped, r->more);
	step_done = 1;
}

static void on_synced(void *arg, enum store_status status, size_t n,
		      const char *const *fields, const char *const *digests)
{
	size_t i;

	note("%s: %s n=%zu", (const char *)arg, store_status_name(status), n);
	for (i = 0; i < n; i++)
		note("  %s %s", fields[i], digests[i]);
	step_done = 1;
}

/* ---- the scenario ---- */

static void make_webhook(struct webhook *wh, const char *id, const char *body)
{
	struct webhook_error err;

	webhook_init(wh);
	wh->id = strdup(id);
	wh->company_id = strdup("acme");
	if (webhook_apply_json(wh, WEBHOOK_CREATE, body, strlen(body), T0 - HOUR,
			       NULL, &err) < 0) {
		fprintf(stderr, "bad test webhook: %s %s\n", err.field, err.message);
		exit(1);
	}
}

static struct store_failure failure(int n, const char *next_job)
{
	struct store_failure f;

	memset(&f, 0, sizeof(f));
	f.attempt.webhook_id = W1;
	f.attempt.event_id = "e-1";
	f.attempt.attempt = n;
	f.attempt.at_ms = T0 + n;
	f.attempt.status = 503;
	f.attempt.error = "HTTP 503";
	f.attempt.duration_ms = 12;
	f.attempt.response = "busy";
	f.attempt.response_len = 4;
	f.window_ms = HOUR;
	f.threshold = 3;
	f.next_job = next_job;
	f.next_due_ms = T0 + 60000;
	return f;
}

static int ready(void *arg)
{
	return store_is_ready(arg);
}

static void scenario(const struct config *cfg)
{
	static const char job[] =
		"{\"webhookId\":\"" W3 "\",\"messageId\":\"msg_1\",\"eventId\":\"e-2\","
		"\"event\":\"Promotion.Created\",\"companyId\":\"acme\","
		"\"occurredAt\":\"2025-06-02T09:30:12.345Z\",\"attempt\":1,\"data\":\"{}\"}";
	struct store_period_hook hook;
	struct store_promotion pr;
	char digest[STORE_DIGEST_LEN];
	struct company_settings s;
	struct store_attempt batch[2];
	struct store_failure f;
	struct webhook w1, w3;
	struct store *st;
	char err[256];

	st = store_new(base, cfg, err, sizeof(err));
	if (!st || itest_run_until(base, ready, st, 5000) < 0) {
		fprintf(stderr, "store not ready: %s\n", st ? "timeout" : err);
		exit(1);
	}
	company_settings_init(&s);
	s.notification_email = strdup("ops@acme.example");
	wait_step("settings_put", store_settings_put(st, "acme", &s, on_write, "settings_put"));
	company_settings_release(&s);
	wait_step("settings_get", store_settings_get(st, "acme", on_settings, "settings_get"));

	make_webhook(&w1, W1, "{\"event\":\"Promotion.Created\","
		     "\"target\":\"https://hooks.acme.example/1\"}");
	make_webhook(&w3, W3, "{\"event\":\"Promotion.Created\","
		     "\"target\":\"https://hooks.acme.example/3\"}");
	wait_step("create", store_webhook_create(st, &w1, on_write, "create w1"));
	wait_step("create", store_webhook_create(st, &w3, on_write, "create w3"));
	wait_step("create", store_webhook_create(st, &w1, on_write, "create w1 again"));
	w1.revision = 1;
	wait_step("replace", store_webhook_replace(st, &w1, 1, on_write, "replace w1"));
	wait_step("get", store_webhook_get(st, "acme", W1, on_webhook, "get w1"));
	wait_step("list", store_webhook_list(st, "acme", on_list, "list"));
	wait_step("load_all", store_load_all(st, on_snapshot, "load_all"));
	wait_step("version", store_version_get(st, on_version, "version"));

	memset(batch, 0, sizeof(batch));
	batch[0].webhook_id = W1;
	batch[0].event_id = "e-0";
	batch[0].attempt = 1;
	batch[0].at_ms = T0 - 10;
	batch[0].status = 200;
	batch[0].duration_ms = 3;
	batch[1] = batch[0];
	batch[1].webhook_id = W3;
	store_log_attempts(st, batch, 2);
	wait_step("success", store_record_success(st, &batch[0], NULL, NULL, on_write, "success"));
	f = failure(1, job);
	wait_step("failure", store_record_failure(st, &f, on_failure, "failure 1"));
	f = failure(2, NULL);
	wait_step("failure", store_record_failure(st, &f, on_failure, "failure 2"));
	f = failure(3, NULL);
	wait_step("failure", store_record_failure(st, &f, on_failure, "failure 3"));
	wait_step("attempts", store_attempts_list(st, W1, on_attempts, "attempts w1"));
	wait_step("attempts", store_attempts_list(st, W3, on_attempts, "attempts w3"));

	wait_step("defer", store_retry_defer(st, W3, "park-msg_1-1", job, T0 + 5000, on_write, "defer"));
	wait_step("retry_claim", store_retry_claim(st, T0 + 70000, 30000, 10, on_claim,
						   "retry_claim"));
	wait_step("retry_renew", store_retry_renew(st, "no-such-retry", "1", T0 + 90000, on_write,
						   "retry_renew"));
	wait_step("retry_drop", store_retry_drop(st, "no-such-retry", "1", on_write, "retry_drop"));
	wait_step("outbox_claim", store_outbox_claim(st, T0 + 10, 60000, 10, on_claim,
						     "outbox_claim"));
	wait_step("outbox_ack", store_outbox_ack(st, claimed_id, on_write, "outbox_ack"));
	wait_step("counts", store_counts(st, on_counts, "counts"));

	memset(&pr, 0, sizeof(pr));
	pr.company_id = "acme";
	pr.promotion_id = "P1";
	pr.event_time_ms = T0;
	pr.data = "{\"promotionId\":\"P1\"}";
	pr.data_len = strlen(pr.data);
	pr.has_start = 1;
	pr.start_ms = T0 + HOUR;
	pr.now_ms = T0;
	wait_step("promotion", store_promotion_apply(st, &pr, on_write, "promotion P1"));
	wait_step("occurrence_check", store_occurrence_check(st, "acme", "P1", "start", T0 + HOUR,
							     "no-such-retry", on_write,
							     "occurrence_check"));
	hook.webhook_id = W2;
	hook.company_id = "acme";
	hook.type = EVENT_PROMOTION_STARTING_IN_PERIOD;
	hook.period = PERIOD_HOURS;
	hook.period_value = 2;
	hook.period_ms = 2 * HOUR;
	store_period_hooks_digest(&hook, 1, digest);
	wait_step("period_hooks_sync", store_period_hooks_sync(st, "acme", hook.type, 7, digest,
							       &hook, 1, T0, on_write,
							       "period_hooks_sync"));
	wait_step("period_synced", store_period_synced(st, on_synced, "period_synced"));
	wait_step("tick", store_period_tick(st, T0, "2025-06-02T09:30:12.345Z", 1000, "t", 100,
					    100, HOUR, on_tick, "tick"));
	wait_step("tick", store_period_tick(st, T0, "2025-06-02T09:30:12.345Z", 1000, "t", 100,
					    100, HOUR, on_tick, "tick again"));
	/* a tombstone, pruned once the retention (an hour here) is over */
	pr.promotion_id = "P2";
	pr.deleted = 1;
	pr.now_ms = T0;
	pr.retention_ms = HOUR;
	wait_step("promotion", store_promotion_apply(st, &pr, on_write, "promotion P2 deleted"));
	wait_step("tick", store_period_tick(st, T0 + 2 * HOUR, "2025-06-02T11:30:12.345Z", 1000,
					    "t", 100, 100, HOUR, on_tick, "tick pruning"));
	wait_step("delete", store_webhook_delete(st, "acme", W1, on_write, "delete w1"));
	webhook_release(&w1);
	webhook_release(&w3);
	store_free(st);
}

/* ---- the data left behind ---- */

/* Every key with its type and contents (no TTLs: they tick), sorted. */
static char *dump(redisContext *c)
{
	redisReply *keys = itest_cmd(c, "KEYS *"), *v;
	struct buf out;
	size_t i, j, k;
	char **names;

	buf_init(&out, BUF_DEFAULT_MAX);
	names = calloc(keys->elements + 1, sizeof(*names));
	for (i = 0; i < keys->elements; i++)
		names[i] = keys->element[i]->str;
	/* insertion sort: a few dozen keys */
	for (i = 1; i < keys->elements; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];

			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (i = 0; i < keys->elements; i++) {
		redisReply *type = itest_cmd(c, "TYPE %s", names[i]);

		buf_addf(&out, "%s %s\n", names[i], type->str);
		if (strcmp(type->str, "string") == 0)
			v = itest_cmd(c, "GET %s", names[i]);
		else if (strcmp(type->str, "hash") == 0)
			v = itest_cmd(c, "HGETALL %s", names[i]);
		else if (strcmp(type->str, "zset") == 0)
			v = itest_cmd(c, "ZRANGE %s 0 -1 WITHSCORES", names[i]);
		else if (strcmp(type->str, "list") == 0)
			v = itest_cmd(c, "LRANGE %s 0 -1", names[i]);
		else
			v = itest_cmd(c, "SMEMBERS %s", names[i]);
		if (v->type == REDIS_REPLY_STRING) {
			buf_addf(&out, "  %s\n", v->str);
		} else {
			/* hashes and sets come in any order: sort the lines */
			size_t n = v->elements, step = strcmp(type->str, "hash") == 0 ? 2 : 1;
			char **lines = calloc(n + 1, sizeof(*lines));

			for (k = 0; k + step <= n; k += step) {
				struct buf l;

				buf_init(&l, BUF_DEFAULT_MAX);
				buf_addf(&l, "  %s", v->element[k]->str);
				if (step == 2)
					buf_addf(&l, " = %s", v->element[k + 1]->str);
				lines[k / step] = buf_detach(&l, NULL);
				buf_release(&l);
			}
			if (strcmp(type->str, "hash") == 0 || strcmp(type->str, "set") == 0) {
				for (k = 1; k < n / step; k++)
					for (j = k; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
						char *t = lines[j];

						lines[j] = lines[j - 1];
						lines[j - 1] = t;
					}
			}
			for (k = 0; k < n / step; k++) {
				buf_addf(&out, "%s\n", lines[k]);
				free(lines[k]);
			}
			free(lines);
		}
		freeReplyObject(v);
		freeReplyObject(type);
	}
	free(names);
	freeReplyObject(keys);
	return buf_detach(&out, NULL);
}

/* ---- MONITOR: which keys the scripts touched ---- */

/* Parses the quoted arguments of a MONITOR line (sdscatrepr's escapes)
 * into argv (malloc'd strings). Returns the count. */
static size_t parse_monitor(const char *p, char **argv, size_t *lens, size_t max)
{
	size_t n = 0;

	while (*p && n < max) {
		struct buf a;

		while (*p && *p != '"')
			p++;
		if (!*p)
			break;
		p++;
		buf_init(&a, BUF_DEFAULT_MAX);
		while (*p && *p != '"') {
			if (*p == '\\' && p[1]) {
				p++;
				switch (*p) {
				case 'n': buf_addc(&a, '\n'); break;
				case 'r': buf_addc(&a, '\r'); break;
				case 't': buf_addc(&a, '\t'); break;
				case 'a': buf_addc(&a, '\a'); break;
				case 'b': buf_addc(&a, '\b'); break;
				case 'x': {
					char hex[3] = { p[1], p[2], 0 };

					buf_addc(&a, (char)strtol(hex, NULL, 16));
					p += 2;
					break;
				}
				default: buf_addc(&a, *p); break;
				}
				p++;
			} else {
				buf_addc(&a, *p++);
			}
		}
		if (*p)
			p++;
		lens[n] = a.len;
		argv[n] = a.data ? buf_detach(&a, NULL) : strdup("");
		buf_release(&a);
		n++;
	}
	return n;
}

#define MON_MAX 64

static int key_declared(char **declared, size_t *dlens, size_t nd,
			const char *key, size_t len)
{
	size_t i;

	for (i = 0; i < nd; i++) {
		if (dlens[i] == len && memcmp(declared[i], key, len) == 0)
			return 1;
	}
	return 0;
}

/*
 * Reads MONITOR lines up to the marker. For each script call (EVALSHA or
 * EVAL) its KEYS are remembered; each command the script runs ("lua"
 * lines) must touch only those (COMMAND GETKEYS). Marks in seen[] every
 * embedded script that ran.
 */
static void check_monitor(redisContext *mon, redisContext *c, const char *marker,
			  int *seen)
{
	char *declared[MON_MAX], *argv[MON_MAX];
	size_t dlens[MON_MAX], lens[MON_MAX], nd = 0, n, i, j;
	long long lua_cmds = 0, undeclared = 0;
	void *r;

	for (;;) {
		redisReply *line;
		const char *body;

		if (redisGetReply(mon, &r) != REDIS_OK) {
			fprintf(stderr, "monitor: %s\n", mon->errstr);
			exit(1);
		}
		line = r;
		if (line->type != REDIS_REPLY_STATUS) {
			freeReplyObject(line);
			continue;
		}
		if (strstr(line->str, marker)) {
			freeReplyObject(line);
			break;
		}
		body = strchr(line->str, ']');
		n = body ? parse_monitor(body, argv, lens, MON_MAX) : 0;
		if (n >= 3 && (strcasecmp(argv[0], "EVALSHA") == 0 ||
			       strcasecmp(argv[0], "EVAL") == 0)) {
			for (i = 0; i < nd; i++)
				free(declared[i]);
			nd = (size_t)strtoul(argv[2], NULL, 10);
			if (nd > n - 3 || nd > MON_MAX) {
				/* more keys than a line parsed here holds (the
				 * scenario never sends that many) */
				fprintf(stderr, "monitor: too many keys\n");
				exit(1);
			}
			for (i = 0; i < nd; i++) {
				declared[i] = strdup(argv[3 + i]);
				dlens[i] = lens[3 + i];
			}
			for (i = 0; i < lua_scripts_count; i++) {
				if (strcmp(argv[1], lua_scripts[i]->sha) == 0 ||
				    strcmp(argv[1], lua_scripts[i]->src) == 0)
					seen[i] = 1;
			}
		} else if (n > 0 && strstr(line->str, " lua]")) {
			const char *gargv[MON_MAX + 2];
			size_t glens[MON_MAX + 2];
			redisReply *keys;

			/* COMMAND GETKEYS <the command>: its key arguments */
			gargv[0] = "COMMAND";
			glens[0] = 7;
			gargv[1] = "GETKEYS";
			glens[1] = 7;
			for (i = 0; i < n; i++) {
				gargv[i + 2] = argv[i];
				glens[i + 2] = lens[i];
			}
			keys = redisCommandArgv(c, (int)n + 2, gargv, glens);
			lua_cmds++;
			if (keys && keys->type == REDIS_REPLY_ARRAY) {
				for (j = 0; j < keys->elements; j++) {
					if (!key_declared(declared, dlens, nd, keys->element[j]->str,
							  keys->element[j]->len)) {
						fprintf(stderr, "undeclared key %s in %s\n",
							keys->element[j]->str, argv[0]);
						undeclared++;
					}
				}
			}
			if (keys)
				freeReplyObject(keys);
		}
		for (i = 0; i < n; i++)
			free(argv[i]);
		freeReplyObject(line);
	}
	for (i = 0; i < nd; i++)
		free(declared[i]);
	fprintf(stderr, "  monitor: %lld commands run by scripts, %lld on undeclared keys\n",
		lua_cmds, undeclared);
	CHECK(lua_cmds > 50);
	CHECK_INT(undeclared, 0);
}

/* ---- the cluster ---- */

/* The port of the node that owns the slot of {pw}: the others answer
 * MOVED. */
static int owner_port(const char *ports)
{
	char copy[256], *tok, *save = NULL;
	int owner = 0, movers = 0;

	snprintf(copy, sizeof(copy), "%s", ports);
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		int port = (int)strtol(tok, NULL, 10);
		redisContext *c = redisConnect("127.0.0.1", port);
		redisReply *r;

		if (!c || c->err) {
			fprintf(stderr, "cannot connect to cluster node %s\n", tok);
			exit(1);
		}
		r = itest_cmd(c, "EXISTS {pw}:probe");
		if (r->type == REDIS_REPLY_INTEGER)
			owner = port;
		else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED", 5) == 0)
			movers++;
		freeReplyObject(r);
		redisFree(c);
	}
	CHECK_INT(movers, 2);
	return owner;
}

static void load_config(struct config *cfg, const char *url, int db)
{
	struct itest_env env = { url, "127.0.0.1:0" };
	char err[256];

	if (config_load(cfg, itest_lookup, &env, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "config: %s\n", err);
		exit(1);
	}
	cfg->redis_db = db;
}

int main(void)
{
	const char *ports = getenv("CLUSTER_PORTS");
	const char *single_url = getenv("REDIS_URL");
	struct config single_cfg, cluster_cfg;
	redisContext *single, *node, *mon;
	char url[128], *single_log, *single_dump, *cluster_dump;
	int port, seen[64] = { 0 };
	size_t i;
	redisReply *r;

	if (!ports || !*ports || !single_url || !*single_url) {
		fprintf(stderr, "CLUSTER_PORTS and REDIS_URL must be set: run under "
			"tests/scripts/with-env.sh (ctest does)\n");
		return 1;
	}
	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	buf_init(&log_text, BUF_DEFAULT_MAX);

	/* The single server. */
	load_config(&single_cfg, single_url, SINGLE_DB);
	single = itest_redis(&single_cfg);
	itest_cmd_ok(single, "FLUSHDB");
	scenario(&single_cfg);
	single_log = buf_detach(&log_text, NULL);
	buf_release(&log_text);
	single_dump = dump(single);

	/* The cluster node that owns {pw}, watched by MONITOR. */
	port = owner_port(ports);
	CHECK(port > 0);
	if (port <= 0)
		return TEST_DONE();
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
	load_config(&cluster_cfg, url, 0);
	node = itest_redis(&cluster_cfg);
	itest_cmd_ok(node, "FLUSHALL");
	mon = redisConnect("127.0.0.1", port);
	r = itest_cmd(mon, "MONITOR");
	freeReplyObject(r);
	buf_init(&log_text, BUF_DEFAULT_MAX);
	scenario(&cluster_cfg);
	r = itest_cmd(node, "ECHO pw-cluster-test-end");
	freeReplyObject(r);
	check_monitor(mon, node, "pw-cluster-test-end", seen);
	redisFree(mon);

	/* The same answers, none of them a failure. */
	CHECK_STR(buf_str(&log_text), single_log);
	CHECK(strstr(single_log, "unavailable") == NULL);
	CHECK(strstr(single_log, "not started") == NULL);
	CHECK(strstr(single_log, "failure 3: ok result=1") != NULL);
	CHECK(strstr(single_log, "tick: ok claimed=1") != NULL);
	CHECK(strstr(single_log, "tick pruning: ok claimed=0 pruned=2") != NULL);
	/* Every script ran on the cluster. */
	for (i = 0; i < lua_scripts_count; i++) {
		if (!seen[i])
			fprintf(stderr, "script %s did not run\n", lua_scripts[i]->name);
		CHECK(seen[i]);
	}
	/* The same data left behind (the claim and lock values name the
	 * same times: the scenario's clock is fixed). */
	cluster_dump = dump(node);
	CHECK_STR(cluster_dump, single_dump);
	if (test_failures)
		fprintf(stderr, "single server transcript:\n%s", single_log);

	free(single_log);
	free(single_dump);
	free(cluster_dump);
	buf_release(&log_text);
	redisFree(node);
	redisFree(single);
	config_release(&single_cfg);
	config_release(&cluster_cfg);
	event_base_free(base);
	return TEST_DONE();
}
