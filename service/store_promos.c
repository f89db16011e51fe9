/*
 * store_promos: promotions and their period occurrences in Redis. A domain
 * store on the store's Redis link; see include/promo_webhooks/store_promos.h
 * for the keys and the scan's contract.
 */
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/buf.h"
#include "promo_webhooks/clock.h"
#include "promo_webhooks/log.h"

#include <stdlib.h>
#include <string.h>

#include "lua_scripts.h"

#define ARG_MAX ((size_t)4 << 20) /* the link's cap on one command */
/* Room in one command for the keys and the numbers besides the state. */
#define ARG_SLACK 1024
/* The state is measured in a buffer this large before it is sent. */
#define DOC_MEASURE_MAX ((size_t)64 << 20)
/* A state with data is kept up to a minute past its last date (a
 * replica's clock may be behind). */
#define CLOCK_SLACK_MS 60000

/* ms, or null when absent. */
static void add_ms_or_null(struct buf *out, int has, int64_t ms)
{
	if (has)
		buf_addf(out, "%lld", (long long)ms);
	else
		buf_adds(out, "null");
}

/* The later of two dates, either absent (has 0). */
static int later(int has_a, int64_t a, int has_b, int64_t b, int64_t *out)
{
	if (!has_a && !has_b)
		return 0;
	*out = !has_a ? b : !has_b ? a : (a > b ? a : b);
	return 1;
}

int store_promotion_apply(struct store *st, const struct store_promotion *pr,
			  store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd;
	struct buf doc;
	int64_t now = pr->now_ms > 0 ? pr->now_ms : clock_wall_ms();
	int64_t keep = pr->retention_ms > 0 ? pr->retention_ms
					    : STORE_PROMO_RETENTION_DEFAULT_MS;
	int64_t last = 0, expiry;
	int ahead;

	if (!pr->company_id || !pr->promotion_id || (!pr->deleted && !pr->data))
		return -1;
	/* The state as store_promos.h lays it out: the data only while a
	 * date is ahead (a claim copies it into the occurrence), a tombstone
	 * only the time that orders it against late events. Built without a
	 * cap first, so that a state too large for one command (permanent)
	 * is told apart from running out of memory (transient). */
	ahead = !pr->deleted &&
		later(pr->has_start, pr->start_ms, pr->has_end, pr->end_ms, &last) &&
		last > now - CLOCK_SLACK_MS;
	expiry = ahead ? last + CLOCK_SLACK_MS : now + keep;
	buf_init(&doc, DOC_MEASURE_MAX);
	buf_addf(&doc, "{\"time\":%lld,", (long long)pr->event_time_ms);
	if (pr->deleted) {
		buf_adds(&doc, "\"deleted\":true}");
	} else {
		buf_adds(&doc, "\"deleted\":false,");
		if (ahead) {
			buf_adds(&doc, "\"data\":");
			buf_add_json_string(&doc, pr->data, pr->data_len);
			buf_addc(&doc, ',');
		}
		buf_adds(&doc, "\"start\":");
		add_ms_or_null(&doc, pr->has_start, pr->start_ms);
		buf_adds(&doc, ",\"end\":");
		add_ms_or_null(&doc, pr->has_end, pr->end_ms);
		buf_addc(&doc, '}');
	}
	if (doc.failed) {
		/* Escaping at most sextuples the data: a failure below
		 * DOC_MEASURE_MAX / 6 is memory, above it the size. */
		buf_release(&doc);
		return pr->data_len > DOC_MEASURE_MAX / 6 ? STORE_PROMOTION_TOO_LARGE : -1;
	}
	if (doc.len + 2 * strlen(pr->company_id) + 2 * strlen(pr->promotion_id) + ARG_SLACK > ARG_MAX) {
		buf_release(&doc);
		return STORE_PROMOTION_TOO_LARGE;
	}
	cmd = rlink_cmd_new("promotion_apply", &lua_promotion_apply);
	if (!cmd) {
		buf_release(&doc);
		return -1;
	}
	rlink_cmd_key(cmd, STORE_KEY("promo:"), pr->company_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-start:"), pr->company_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-end:"), pr->company_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("period-hooks:"), pr->company_id, ":start", NULL);
	rlink_cmd_key(cmd, STORE_KEY("period-hooks:"), pr->company_id, ":end", NULL);
	rlink_cmd_key(cmd, STORE_KEY("period-due"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-expiry"), NULL);
	rlink_cmd_args(cmd, pr->promotion_id);
	rlink_cmd_argnum(cmd, pr->event_time_ms);
	rlink_cmd_args(cmd, pr->deleted ? "1" : "0");
	store_arg_buf(cmd, &doc);
	if (!pr->deleted && pr->has_start)
		rlink_cmd_argnum(cmd, pr->start_ms);
	else
		rlink_cmd_args(cmd, "");
	if (!pr->deleted && pr->has_end)
		rlink_cmd_argnum(cmd, pr->end_ms);
	else
		rlink_cmd_args(cmd, "");
	rlink_cmd_args(cmd, pr->company_id);
	rlink_cmd_argnum(cmd, now);
	rlink_cmd_argnum(cmd, expiry);
	buf_release(&doc);
	return store_start_write(st, cmd, cb, arg);
}

int store_occurrence_check(struct store *st, const char *company_id,
			   const char *promotion_id, const char *date,
			   int64_t at_ms, const char *retry_id,
			   store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd;

	if (!company_id || !promotion_id || !date || !retry_id)
		return -1;
	cmd = rlink_cmd_new("occurrence_check", &lua_occurrence_check);
	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("promo:"), company_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_args(cmd, promotion_id);
	rlink_cmd_args(cmd, date);
	rlink_cmd_argnum(cmd, at_ms);
	rlink_cmd_args(cmd, retry_id);
	return store_start_write(st, cmd, cb, arg);
}


const char *store_period_which(enum event_type type)
{
	if (type == EVENT_PROMOTION_STARTING_IN_PERIOD)
		return "start";
	if (type == EVENT_PROMOTION_ENDING_IN_PERIOD)
		return "end";
	return NULL;
}

/* A hook's member of {pw}:period-hooks:<c>:<kind> into out (reset first):
 * "<webhookId>\n<period>\n<value>". Returns -1 for a hook that is not a
 * period hook (no kind, no period, P <= 0). */
static int hook_member(const struct store_period_hook *h, struct buf *out)
{
	const char *period = period_unit_name(h->period);

	buf_reset(out);
	if (!store_period_which(h->type) || !period || !h->webhook_id ||
	    h->period_ms <= 0 || h->period_value <= 0)
		return -1;
	buf_addf(out, "%s\n%s\n%lld", h->webhook_id, period,
		 (long long)h->period_value);
	return out->failed ? -1 : 0;
}

/* FNV-1a, 64 bits. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void store_period_hooks_digest(const struct store_period_hook *hooks, size_t n,
			       char out[STORE_DIGEST_LEN])
{
	uint64_t h = 14695981039346656037ULL;
	struct buf m;
	size_t i, k = 0;

	buf_init(&m, ARG_MAX);
	for (i = 0; i < n; i++) {
		char p[24];

		if (hook_member(&hooks[i], &m) < 0)
			continue;
		snprintf(p, sizeof(p), "%lld\n", (long long)hooks[i].period_ms);
		h = fnv(h, p, strlen(p));
		h = fnv(h, buf_str(&m), m.len + 1);
		k++;
	}
	buf_release(&m);
	if (k == 0)
		snprintf(out, STORE_DIGEST_LEN, "-");
	else
		snprintf(out, STORE_DIGEST_LEN, "%016llx", (unsigned long long)h);
}

#define REQUEUE_CHUNK 500 /* dates queued again per call */

/* A write of a company's hooks, then, when it asks for it, its dates
 * queued again chunk by chunk. */
struct sync_ctx {
	struct store *st;
	store_write_cb *cb;
	void *arg;
	char *company;
	const char *which;
	int64_t now_ms;
};

static void sync_end(struct sync_ctx *c, enum rlink_status rs,
		     enum store_status status, int64_t written)
{
	if (rs != RLINK_CANCELLED)
		c->cb(c->arg, status, status == STORE_OK ? written : 0);
	free(c->company);
	free(c);
}

static void on_requeue(void *arg, enum rlink_status rs, const struct rlink_reply *r);

static int requeue(struct sync_ctx *c, const char *from)
{
	struct rlink_cmd *cmd = rlink_cmd_new("period_requeue", &lua_period_requeue);
	struct buf m;

	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("period-hooks:"), c->company, ":", c->which, NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-"), c->which, ":", c->company, NULL);
	rlink_cmd_key(cmd, STORE_KEY("period-due"), NULL);
	rlink_cmd_args(cmd, from);
	buf_init(&m, ARG_MAX);
	buf_addf(&m, "%s\n%s\n", c->which, c->company);
	store_arg_buf(cmd, &m);
	buf_release(&m);
	rlink_cmd_argnum(cmd, REQUEUE_CHUNK);
	return store_start(c->st, cmd, on_requeue, c, c->arg);
}

static void on_requeue(void *arg, enum rlink_status rs, const struct rlink_reply *r)
{
	struct sync_ctx *c = arg;
	const char *next = NULL;
	char from[48];

	if (rs != RLINK_OK) {
		sync_end(c, rs, store_status_from(rs), 0);
		return;
	}
	if (rlink_reply_is(rlink_reply_at(r, 0), "ok"))
		next = rlink_reply_str(rlink_reply_at(r, 1), NULL);
	if (!next || strlen(next) >= sizeof(from)) {
		log_warn("redis script answered unexpectedly", "op=%s", "period_requeue");
		sync_end(c, rs, STORE_ERROR, 0);
		return;
	}
	if (!*next) {
		sync_end(c, rs, STORE_OK, 1);
		return;
	}
	snprintf(from, sizeof(from), "%s", next);
	if (requeue(c, from) < 0)
		sync_end(c, rs, STORE_UNAVAILABLE, 0);
}

static void on_sync(void *arg, enum rlink_status rs, const struct rlink_reply *r)
{
	struct sync_ctx *c = arg;
	int64_t n = -1;
	char from[32];

	if (rs != RLINK_OK) {
		sync_end(c, rs, store_status_from(rs), 0);
		return;
	}
	if (!rlink_reply_is(rlink_reply_at(r, 0), "ok") ||
	    rlink_reply_int64(rlink_reply_at(r, 1), &n) < 0 || n < 0 || n > 2) {
		log_warn("redis script answered unexpectedly", "op=%s", "period_hooks_sync");
		sync_end(c, rs, STORE_ERROR, 0);
		return;
	}
	if (n < 2) {
		sync_end(c, rs, STORE_OK, n);
		return;
	}
	snprintf(from, sizeof(from), "(%lld", (long long)c->now_ms);
	if (requeue(c, from) < 0)
		sync_end(c, rs, STORE_UNAVAILABLE, 0);
}

int store_period_hooks_sync(struct store *st, const char *company_id,
			    enum event_type type, int64_t version,
			    const char *digest,
			    const struct store_period_hook *hooks, size_t n,
			    int64_t now_ms, store_write_cb *cb, void *arg)
{
	const char *which = store_period_which(type);
	struct rlink_cmd *cmd;
	struct sync_ctx *c;
	struct buf m;
	size_t i;

	if (!company_id || !which || !digest)
		return -1;
	cmd = rlink_cmd_new("period_hooks_sync", &lua_period_hooks_sync);
	c = calloc(1, sizeof(*c));
	if (!cmd || !c || !(c->company = strdup(company_id))) {
		rlink_cmd_free(cmd);
		free(c);
		return -1;
	}
	c->st = st;
	c->cb = cb;
	c->arg = arg;
	c->which = which;
	c->now_ms = now_ms;
	rlink_cmd_key(cmd, STORE_KEY("period-hooks:"), company_id, ":", which, NULL);
	rlink_cmd_key(cmd, STORE_KEY("period-hooks-sync"), NULL);
	buf_init(&m, ARG_MAX);
	buf_addf(&m, "%s\n%s", company_id, which);
	store_arg_buf(cmd, &m);
	rlink_cmd_argnum(cmd, version);
	rlink_cmd_args(cmd, digest);
	for (i = 0; i < n; i++) {
		if (hooks[i].type != type || hook_member(&hooks[i], &m) < 0)
			continue;
		rlink_cmd_argnum(cmd, hooks[i].period_ms);
		store_arg_buf(cmd, &m);
	}
	buf_release(&m);
	if (store_start(st, cmd, on_sync, c, arg) < 0) {
		free(c->company);
		free(c);
		return -1;
	}
	return 0;
}

struct synced_ctx {
	store_synced_cb *cb;
	void *arg;
};

/* HGETALL {pw}:period-hooks-sync: field, "<version>:<digest>", ... */
static void on_synced(void *arg, enum rlink_status rs, const struct rlink_reply *r)
{
	struct synced_ctx *c = arg;
	enum store_status status = store_status_from(rs);
	size_t n = rs == RLINK_OK ? rlink_reply_count(r) / 2 : 0, i, k = 0;
	const char **fields = calloc(n + 1, sizeof(*fields));
	const char **digests = calloc(n + 1, sizeof(*digests));

	if (rs == RLINK_OK && (!fields || !digests))
		status = STORE_UNAVAILABLE; /* out of memory: passes */
	for (i = 0; status == STORE_OK && i < n; i++) {
		const char *f = rlink_reply_str(rlink_reply_at(r, 2 * i), NULL);
		const char *v = rlink_reply_str(rlink_reply_at(r, 2 * i + 1), NULL);
		const char *colon = v ? strchr(v, ':') : NULL;

		if (!f || !colon)
			continue;
		fields[k] = f;
		digests[k++] = colon + 1;
	}
	if (rs != RLINK_CANCELLED)
		c->cb(c->arg, status, status == STORE_OK ? k : 0, fields, digests);
	free(fields);
	free(digests);
	free(c);
}

int store_period_synced(struct store *st, store_synced_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("period_synced", NULL);
	struct synced_ctx *c = malloc(sizeof(*c));

	if (!cmd || !c) {
		rlink_cmd_free(cmd);
		free(c);
		return -1;
	}
	c->cb = cb;
	c->arg = arg;
	rlink_cmd_args(cmd, "HGETALL");
	rlink_cmd_args(cmd, STORE_KEY("period-hooks-sync"));
	if (store_start(st, cmd, on_synced, c, arg) < 0) {
		free(c);
		return -1;
	}
	return 0;
}

/* A pass in two round trips: period_due.lua, then period_claim.lua with
 * the keys of what the first answered. */
struct tick_ctx {
	struct store *st;
	int64_t now_ms;
	char now_text[40];
	size_t limit, budget;
	int64_t retention_ms;
	store_tick_cb *cb;
	void *arg;
	struct store_tick_result res;
};

static void tick_end(struct tick_ctx *t, enum rlink_status rs,
		     enum store_status status)
{
	if (rs != RLINK_CANCELLED)
		t->cb(t->arg, status, &t->res);
	free(t);
}

static void on_claim(void *arg, enum rlink_status rs, const struct rlink_reply *r)
{
	struct tick_ctx *t = arg;
	enum store_status status = store_status_from(rs);
	int64_t claimed = 0, pruned = 0;

	if (rs == RLINK_OK) {
		if (rlink_reply_is(rlink_reply_at(r, 0), "ok") && rlink_reply_count(r) == 3 &&
		    rlink_reply_int64(rlink_reply_at(r, 1), &claimed) == 0 &&
		    rlink_reply_int64(rlink_reply_at(r, 2), &pruned) == 0 &&
		    claimed >= 0 && pruned >= 0) {
			t->res.claimed = (size_t)claimed;
			t->res.pruned = (size_t)pruned;
			/* the budget cut the round: due dates are left */
			if (t->res.claimed >= t->budget)
				t->res.more = 1;
		} else {
			log_warn("redis script answered unexpectedly", "op=%s",
				 "period_claim");
			status = STORE_ERROR;
		}
	}
	tick_end(t, rs, status);
}

/* Adds the keys of a due member "<kind>\n<c>\n<x>" (its promotions, date
 * index and hooks) or an expired one "<c>\n<x>" (its promotions and both
 * date indexes). Returns -1 for a member of another shape. */
static int member_keys(struct rlink_cmd *cmd, const char *m, int due)
{
	const char *nl = strchr(m, '\n'), *nl2;
	char kind[8], company[512];

	if (!nl)
		return -1;
	if (!due) {
		if ((size_t)(nl - m) >= sizeof(company))
			return -1;
		memcpy(company, m, (size_t)(nl - m));
		company[nl - m] = '\0';
		rlink_cmd_key(cmd, STORE_KEY("promo:"), company, NULL);
		rlink_cmd_key(cmd, STORE_KEY("promo-start:"), company, NULL);
		rlink_cmd_key(cmd, STORE_KEY("promo-end:"), company, NULL);
		return 0;
	}
	nl2 = strchr(nl + 1, '\n');
	if (!nl2 || (size_t)(nl - m) >= sizeof(kind) ||
	    (size_t)(nl2 - nl - 1) >= sizeof(company))
		return -1;
	memcpy(kind, m, (size_t)(nl - m));
	kind[nl - m] = '\0';
	memcpy(company, nl + 1, (size_t)(nl2 - nl - 1));
	company[nl2 - nl - 1] = '\0';
	if (strcmp(kind, "start") != 0 && strcmp(kind, "end") != 0)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("promo:"), company, NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-"), kind, ":", company, NULL);
	rlink_cmd_key(cmd, STORE_KEY("period-hooks:"), company, ":", kind, NULL);
	return 0;
}

/* Adds the members of list that member_keys takes, keys first (args go
 * after every key): returns how many, with ok[] marking them. */
static size_t list_keys(struct rlink_cmd *cmd, const struct rlink_reply *list,
			int due, unsigned char *ok)
{
	size_t i, n = rlink_reply_count(list), k = 0;

	for (i = 0; i < n; i++) {
		const char *m = rlink_reply_str(rlink_reply_at(list, i), NULL);

		ok[i] = m && member_keys(cmd, m, due) == 0;
		if (ok[i])
			k++;
		else
			log_warn("period queue member skipped", "member=%s", m ? m : "-");
	}
	return k;
}

static void list_args(struct rlink_cmd *cmd, const struct rlink_reply *list,
		      const unsigned char *ok)
{
	size_t i, n = rlink_reply_count(list);

	for (i = 0; i < n; i++)
		if (ok[i])
			rlink_cmd_args(cmd, rlink_reply_str(rlink_reply_at(list, i), NULL));
}

static void on_due(void *arg, enum rlink_status rs, const struct rlink_reply *r)
{
	struct tick_ctx *t = arg;
	const struct rlink_reply *due, *exp;
	struct rlink_cmd *cmd;
	unsigned char *ok_due, *ok_exp;
	size_t nd, ne;

	if (rs != RLINK_OK) {
		tick_end(t, rs, store_status_from(rs));
		return;
	}
	if (rlink_reply_is(rlink_reply_at(r, 0), "skipped")) {
		t->res.skipped = 1;
		tick_end(t, rs, STORE_OK);
		return;
	}
	due = rlink_reply_at(r, 1);
	exp = rlink_reply_at(r, 2);
	if (!rlink_reply_is(rlink_reply_at(r, 0), "ok") || !due || !exp ||
	    rlink_reply_type(due) != RLINK_ARRAY || rlink_reply_type(exp) != RLINK_ARRAY) {
		log_warn("redis script answered unexpectedly", "op=%s", "period_due");
		tick_end(t, rs, STORE_ERROR);
		return;
	}
	nd = rlink_reply_count(due);
	ne = rlink_reply_count(exp);
	t->res.more = nd >= t->limit || ne >= t->limit;
	if (nd == 0 && ne == 0) {
		tick_end(t, rs, STORE_OK);
		return;
	}
	cmd = rlink_cmd_new("period_claim", &lua_period_claim);
	ok_due = calloc(nd + 1, 1);
	ok_exp = calloc(ne + 1, 1);
	if (!cmd || !ok_due || !ok_exp) {
		rlink_cmd_free(cmd);
		free(ok_due);
		free(ok_exp);
		tick_end(t, rs, STORE_UNAVAILABLE);
		return;
	}
	rlink_cmd_key(cmd, STORE_KEY("seq"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("period-due"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("occurrences"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-expiry"), NULL);
	nd = list_keys(cmd, due, 1, ok_due);
	list_keys(cmd, exp, 0, ok_exp);
	rlink_cmd_argnum(cmd, t->now_ms);
	rlink_cmd_args(cmd, t->now_text);
	rlink_cmd_argnum(cmd, (int64_t)nd);
	rlink_cmd_argnum(cmd, (int64_t)t->budget);
	rlink_cmd_argnum(cmd, t->retention_ms);
	list_args(cmd, due, ok_due);
	list_args(cmd, exp, ok_exp);
	free(ok_due);
	free(ok_exp);
	if (store_start(t->st, cmd, on_claim, t, t->arg) < 0)
		tick_end(t, rs, STORE_UNAVAILABLE);
}

int store_period_tick(struct store *st, int64_t now_ms, const char *now_text,
		      int64_t lock_ms, const char *token, size_t limit,
		      size_t budget, int64_t retention_ms, store_tick_cb *cb,
		      void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("period_due", &lua_period_due);
	struct tick_ctx *t = calloc(1, sizeof(*t));

	if (!cmd || !t || !token || !now_text || limit == 0) {
		rlink_cmd_free(cmd);
		free(t);
		return -1;
	}
	t->st = st;
	t->now_ms = now_ms;
	snprintf(t->now_text, sizeof(t->now_text), "%s", now_text);
	t->limit = limit;
	t->budget = budget;
	t->retention_ms = retention_ms > 0 ? retention_ms : STORE_PROMO_RETENTION_DEFAULT_MS;
	t->cb = cb;
	t->arg = arg;
	rlink_cmd_key(cmd, STORE_KEY("scheduler:lock"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("period-due"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-expiry"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("occurrences"), NULL);
	rlink_cmd_argnum(cmd, now_ms);
	rlink_cmd_argnum(cmd, lock_ms > 0 ? lock_ms : 1);
	rlink_cmd_args(cmd, token);
	rlink_cmd_argnum(cmd, (int64_t)limit);
	if (store_start(st, cmd, on_due, t, arg) < 0) {
		free(t);
		return -1;
	}
	return 0;
}
