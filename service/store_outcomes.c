/*
 * store_outcomes: the failure rule, the attempt log, retries and the
 * notice outbox in Redis. A domain store on the store's Redis link; see
 * include/promo_webhooks/store_outcomes.h for the keys and the rules.
 */
#include "promo_webhooks/store_outcomes.h"
#include "promo_webhooks/rfc3339.h"
#include "promo_webhooks/buf.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/notice.h"
#include "promo_webhooks/webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_scripts.h"

#define ENTRY_MAX ((size_t)4 << 20) /* the link's cap on one command */
#define ATTEMPTS_KEEP 100        /* entries of an attempt log */
#define ATTEMPTS_TTL_MS ((int64_t)30 * 86400 * 1000) /* an idle log's life */
#define LOG_BATCH_MAX 256        /* entries in one log_attempts EVAL */
#define CLAIM_MAX 1000           /* retries or notices in one claim */

static void add_json_or_null(struct buf *out, const char *s)
{
	if (s)
		buf_add_json_string(out, s, strlen(s));
	else
		buf_adds(out, "null");
}

/* The members an attempt log entry and a failure member share, from
 * "status" on: status (null when none was received), error. */
static void add_outcome(struct buf *out, const struct store_attempt *a)
{
	buf_adds(out, "\"status\":");
	if (a->status > 0)
		buf_add_int(out, a->status);
	else
		buf_adds(out, "null");
	buf_adds(out, ",\"error\":");
	add_json_or_null(out, a->error);
}

/* An attempt log entry, the contract's shape (section 7):
 * {"at","eventId","attempt","status","error","durationMs"}, plus
 * "responseBody" (the first KiB the receiver answered) on failures. */
static void attempt_json(const struct store_attempt *a, const char *at_text,
			 struct buf *out)
{
	buf_adds(out, "{\"at\":");
	add_json_or_null(out, at_text);
	buf_adds(out, ",\"eventId\":");
	add_json_or_null(out, a->event_id);
	buf_adds(out, ",\"attempt\":");
	buf_add_int(out, a->attempt);
	buf_addc(out, ',');
	add_outcome(out, a);
	buf_adds(out, ",\"durationMs\":");
	buf_add_int(out, a->duration_ms);
	/* Beyond the contract's fields: what a failing receiver answered. */
	if (a->response && a->response_len) {
		buf_adds(out, ",\"responseBody\":");
		buf_add_json_string(out, a->response,
				    a->response_len < 1024 ? a->response_len : 1024);
	}
	buf_addc(out, '}');
}

/* ---- the failure rule ---- */

#define DISABLE_TRIES 8 /* conflicts (concurrent writes) before giving up */

/* A failure being recorded: the first step (record_failure.lua) and, when
 * it reached the threshold, the disable (webhook_disable.lua). */
struct failure_ctx {
	struct store *st;
	store_failure_cb *cb;
	void *arg;
	char *webhook_id;
	char *at_text;          /* the attempt's time, RFC 3339 */
	int64_t at_ms;
	int64_t window_ms;
	long status;            /* the last failure, for the notice */
	char *error;
	long count;             /* failures within the window */
	char *email;            /* the company's notification email, or NULL */
	char **members;         /* the window's failures, oldest first */
	size_t *member_lens;
	size_t n_members;
	int tries;              /* disable attempts so far */
};

static void failure_ctx_free(struct failure_ctx *f)
{
	size_t i;

	for (i = 0; i < f->n_members; i++)
		free(f->members[i]);
	free(f->members);
	free(f->member_lens);
	free(f->webhook_id);
	free(f->at_text);
	free(f->error);
	free(f->email);
	free(f);
}

static void failure_end(struct failure_ctx *f, enum store_status status,
			enum store_failure_result result)
{
	f->cb(f->arg, status, result);
	failure_ctx_free(f);
}

static int start_disable(struct failure_ctx *f, const char *doc, size_t len);

static void on_disable(void *arg, enum rlink_status rs,
		       const struct rlink_reply *r)
{
	struct failure_ctx *f = arg;
	const struct rlink_reply *s;
	const char *doc;
	size_t len;

	if (rs == RLINK_CANCELLED) {
		failure_ctx_free(f);
		return;
	}
	if (rs != RLINK_OK) {
		failure_end(f, store_status_from(rs), STORE_FAILURE_INACTIVE);
		return;
	}
	s = rlink_reply_at(r, 0);
	if (s && rlink_reply_is(s, "disabled")) {
		failure_end(f, STORE_OK, STORE_FAILURE_DISABLED);
	} else if (s && rlink_reply_is(s, "inactive")) {
		/* Another replica's disable came first. */
		failure_end(f, STORE_OK, STORE_FAILURE_INACTIVE);
	} else if (s && rlink_reply_is(s, "conflict") &&
		   (doc = rlink_reply_str(rlink_reply_at(r, 1), &len)) != NULL &&
		   f->tries < DISABLE_TRIES) {
		/* Written since it was read (an API change): disable what is
		 * stored now. */
		if (start_disable(f, doc, len) < 0)
			failure_end(f, STORE_ERROR, STORE_FAILURE_INACTIVE);
	} else {
		log_warn("redis script answered unexpectedly", "op=%s webhook=%s",
			 "webhook_disable", f->webhook_id);
		failure_end(f, STORE_ERROR, STORE_FAILURE_INACTIVE);
	}
}

/*
 * Builds the disabled document from the stored one (webhook_disable, the
 * one place a disable is written) and the notice's fields when the company
 * has a notification email, and starts webhook_disable.lua. Returns 0, or
 * -1 when the stored document is unreadable or memory ran out.
 */
static int start_disable(struct failure_ctx *f, const char *stored, size_t len)
{
	struct rlink_cmd *cmd = NULL;
	struct buf doc, notice;
	struct webhook wh;
	char reason[128];
	int64_t revision;
	int rc = -1;

	f->tries++;
	webhook_init(&wh);
	buf_init(&doc, ENTRY_MAX);
	buf_init(&notice, ENTRY_MAX);
	if (webhook_from_storage(&wh, stored, len) < 0) {
		log_warn("stored webhook unreadable", "webhook=%s", f->webhook_id);
		goto out;
	}
	webhook_failure_reason(f->count, f->window_ms, reason, sizeof(reason));
	revision = wh.revision;
	if (webhook_disable(&wh, f->at_ms, reason) < 0)
		goto out;
	wh.revision = revision + 1;
	webhook_to_storage(&wh, &doc);
	if (f->email) {
		struct notice_fields nf;

		memset(&nf, 0, sizeof(nf));
		nf.to = f->email;
		nf.company_id = wh.company_id;
		nf.webhook_id = wh.id;
		nf.event = event_type_name(wh.event);
		nf.target = wh.target;
		nf.disabled_at = f->at_text;
		nf.count = f->count;
		nf.window_ms = f->window_ms;
		nf.last_status = f->status;
		nf.last_error = f->error;
		nf.failures = (const char *const *)f->members;
		nf.failure_lens = f->member_lens;
		nf.n_failures = f->n_members;
		notice_fields_encode(&nf, &notice);
	}
	cmd = rlink_cmd_new("webhook_disable", &lua_webhook_disable);
	if (!cmd)
		goto out;
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("version"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("seq"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("notices"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("outbox"), NULL);
	rlink_cmd_args(cmd, f->webhook_id);
	rlink_cmd_args(cmd, store_channel(f->st));
	rlink_cmd_argnum(cmd, revision);
	store_arg_buf(cmd, &doc);
	if (f->email)
		store_arg_buf(cmd, &notice);
	else
		rlink_cmd_args(cmd, "");
	rlink_cmd_argnum(cmd, f->at_ms);
	rc = store_start(f->st, cmd, on_disable, f, f->arg);
out:
	webhook_release(&wh);
	buf_release(&doc);
	buf_release(&notice);
	return rc;
}

/* Keeps what the disable needs from an "over" answer: {"over", count,
 * document, settings, members...}. Returns 0 or -1. */
static int keep_over(struct failure_ctx *f, const struct rlink_reply *r)
{
	size_t i, n = rlink_reply_count(r), len;
	const char *settings = rlink_reply_str(rlink_reply_at(r, 3), &len);
	int64_t count = 0;

	if (n < 4 || !settings ||
	    rlink_reply_int64(rlink_reply_at(r, 1), &count) < 0)
		return -1;
	f->count = (long)count;
	if (len > 0) {
		struct company_settings cs;

		company_settings_init(&cs);
		if (company_settings_from_json(&cs, settings, len) == 0 &&
		    cs.notification_email && cs.notification_email[0])
			f->email = strdup(cs.notification_email);
		company_settings_release(&cs);
	}
	f->members = calloc(n - 4 + 1, sizeof(*f->members));
	f->member_lens = calloc(n - 4 + 1, sizeof(*f->member_lens));
	if (!f->members || !f->member_lens)
		return -1;
	for (i = 4; i < n; i++) {
		const char *m = rlink_reply_str(rlink_reply_at(r, i), &len);

		if (!m)
			continue;
		f->members[f->n_members] = strndup(m, len);
		if (!f->members[f->n_members])
			return -1;
		f->member_lens[f->n_members++] = len;
	}
	return 0;
}

/* {"counted"} / {"over", ...} / {"inactive"} / {"unreadable"} */
static void on_failure(void *arg, enum rlink_status rs,
		       const struct rlink_reply *r)
{
	struct failure_ctx *f = arg;
	const struct rlink_reply *s;
	const char *doc;
	size_t len;

	if (rs == RLINK_CANCELLED) {
		failure_ctx_free(f);
		return;
	}
	if (rs != RLINK_OK) {
		failure_end(f, store_status_from(rs), STORE_FAILURE_INACTIVE);
		return;
	}
	s = rlink_reply_at(r, 0);
	if (s && rlink_reply_is(s, "counted")) {
		failure_end(f, STORE_OK, STORE_FAILURE_COUNTED);
	} else if (s && rlink_reply_is(s, "stale")) {
		failure_end(f, STORE_OK, STORE_FAILURE_STALE);
	} else if (s && rlink_reply_is(s, "duplicate")) {
		failure_end(f, STORE_OK, STORE_FAILURE_DUPLICATE);
	} else if (s && rlink_reply_is(s, "inactive")) {
		failure_end(f, STORE_OK, STORE_FAILURE_INACTIVE);
	} else if (s && rlink_reply_is(s, "over") &&
		   (doc = rlink_reply_str(rlink_reply_at(r, 2), &len)) != NULL) {
		if (keep_over(f, r) < 0 || start_disable(f, doc, len) < 0)
			failure_end(f, STORE_ERROR, STORE_FAILURE_INACTIVE);
	} else {
		if (s && rlink_reply_is(s, "unreadable"))
			log_warn("stored webhook unreadable", "webhook=%s", f->webhook_id);
		else
			log_warn("redis script answered unexpectedly", "op=%s",
				 "record_failure");
		failure_end(f, STORE_ERROR, STORE_FAILURE_INACTIVE);
	}
}

int store_record_failure(struct store *st, const struct store_failure *f,
			 store_failure_cb *cb, void *arg)
{
	const struct store_attempt *a = &f->attempt;
	const char *at_text = f->at_text;
	struct failure_ctx *ctx;
	struct rlink_cmd *cmd;
	struct buf entry, tail;
	char ts[32];

	if (!a->webhook_id)
		return -1;
	if (!at_text) {
		rfc3339_format(a->at_ms, ts, sizeof(ts));
		at_text = ts;
	}
	cmd = rlink_cmd_new("record_failure", &lua_record_failure);
	ctx = calloc(1, sizeof(*ctx));
	if (!cmd || !ctx || !(ctx->webhook_id = strdup(a->webhook_id)) ||
	    !(ctx->at_text = strdup(at_text)) ||
	    (a->error && !(ctx->error = strdup(a->error)))) {
		rlink_cmd_free(cmd);
		if (ctx)
			failure_ctx_free(ctx);
		return -1;
	}
	ctx->st = st;
	ctx->cb = cb;
	ctx->arg = arg;
	ctx->at_ms = a->at_ms;
	ctx->window_ms = f->window_ms > 0 ? f->window_ms : 1;
	ctx->status = a->status;
	buf_init(&entry, ENTRY_MAX);
	attempt_json(a, at_text, &entry);
	/* The failure member after its unique id, which the script adds. */
	buf_init(&tail, ENTRY_MAX);
	buf_adds(&tail, "\"at\":");
	buf_add_json_string(&tail, at_text, strlen(at_text));
	buf_addc(&tail, ',');
	add_outcome(&tail, a);
	buf_addc(&tail, '}');
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("attempts:"), a->webhook_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("failures:"), a->webhook_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("settings"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("seq"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-claims"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("recorded:"), f->attempt_id ? f->attempt_id : "-", NULL);
	rlink_cmd_args(cmd, a->webhook_id);
	store_arg_buf(cmd, &entry);
	rlink_cmd_argnum(cmd, ATTEMPTS_TTL_MS);
	rlink_cmd_argnum(cmd, a->at_ms);
	store_arg_buf(cmd, &tail);
	rlink_cmd_argnum(cmd, ctx->window_ms);
	rlink_cmd_argnum(cmd, f->threshold > 0 ? f->threshold : 1);
	rlink_cmd_args(cmd, f->retry_id ? f->retry_id : "");
	rlink_cmd_args(cmd, f->next_job ? f->next_job : "");
	rlink_cmd_argnum(cmd, f->next_due_ms);
	rlink_cmd_argnum(cmd, ATTEMPTS_KEEP);
	rlink_cmd_args(cmd, f->retry_token ? f->retry_token : "");
	rlink_cmd_args(cmd, f->attempt_id ? "1" : "");
	buf_release(&entry);
	buf_release(&tail);
	if (store_start(st, cmd, on_failure, ctx, arg) < 0) {
		failure_ctx_free(ctx);
		return -1;
	}
	return 0;
}

int store_record_success(struct store *st, const struct store_attempt *a,
			 const char *retry_id, const char *retry_token,
			 store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd;
	struct buf entry;
	char ts[32];

	if (!a->webhook_id)
		return -1;
	cmd = rlink_cmd_new("record_success", &lua_record_success);
	if (!cmd)
		return -1;
	rfc3339_format(a->at_ms, ts, sizeof(ts));
	buf_init(&entry, ENTRY_MAX);
	attempt_json(a, ts, &entry);
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("attempts:"), a->webhook_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-claims"), NULL);
	rlink_cmd_args(cmd, a->webhook_id);
	store_arg_buf(cmd, &entry);
	rlink_cmd_argnum(cmd, ATTEMPTS_TTL_MS);
	rlink_cmd_argnum(cmd, ATTEMPTS_KEEP);
	rlink_cmd_args(cmd, retry_id ? retry_id : "");
	rlink_cmd_args(cmd, retry_token ? retry_token : "");
	buf_release(&entry);
	return store_start_write(st, cmd, cb, arg);
}

int store_record_test(struct store *st, const struct store_attempt *a,
		      store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd;
	struct buf entry;
	char ts[32];

	if (!a->webhook_id)
		return -1;
	cmd = rlink_cmd_new("record_test", &lua_record_success);
	if (!cmd)
		return -1;
	rfc3339_format(a->at_ms, ts, sizeof(ts));
	buf_init(&entry, ENTRY_MAX);
	attempt_json(a, ts, &entry);
	/* The entry is one object: mark it as a test before its last '}'. */
	if (!entry.failed && entry.len > 0) {
		entry.len--;
		buf_adds(&entry, ",\"test\":true}");
	}
	/* record_success.lua: the log entry only (while the webhook exists);
	 * nothing goes to the failure set and no retry is finished. */
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("attempts:"), a->webhook_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_args(cmd, a->webhook_id);
	store_arg_buf(cmd, &entry);
	rlink_cmd_argnum(cmd, ATTEMPTS_TTL_MS);
	rlink_cmd_argnum(cmd, ATTEMPTS_KEEP);
	rlink_cmd_args(cmd, "");
	buf_release(&entry);
	return store_start_write(st, cmd, cb, arg);
}

/* ---- the attempt log ---- */

/*
 * Successes are coalesced per webhook before they are written: an attempt
 * log keeps only its newest ATTEMPTS_KEEP entries, so of a busy webhook's
 * successes in one call only the newest ATTEMPTS_KEEP are sent, and they
 * go in one LPUSH (one existence check, one LTRIM, one PEXPIRE per webhook
 * instead of per entry). The entries dropped here are those the LTRIM
 * would have removed.
 */
struct log_entry {
	const struct store_attempt *a;
	size_t pos; /* in the caller's array: the order of completion */
};

/* By webhook id, then oldest first. */
static int log_entry_cmp(const void *x, const void *y)
{
	const struct log_entry *l = x, *r = y;
	int c = strcmp(l->a->webhook_id, r->a->webhook_id);

	if (c)
		return c;
	return l->pos < r->pos ? -1 : l->pos > r->pos;
}

/* One webhook's entries to write: e[from .. from + n), oldest first. */
struct log_group {
	size_t from, n;
};

/* Sends the groups g[0..ng) in one EVALSHA without waiting for its answer
 * (keys first, then the arguments). Returns 0, or -1 when it could not be
 * sent. */
static int log_send(struct store *st, const struct log_entry *e,
		    const struct log_group *g, size_t ng, struct buf *entry)
{
	struct rlink_cmd *cmd = rlink_cmd_new("log_attempts", &lua_log_attempts);
	char ts[32];
	size_t i, j;

	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	for (i = 0; i < ng; i++)
		rlink_cmd_key(cmd, STORE_KEY("attempts:"), e[g[i].from].a->webhook_id, NULL);
	rlink_cmd_argnum(cmd, ATTEMPTS_TTL_MS);
	rlink_cmd_argnum(cmd, ATTEMPTS_KEEP);
	for (i = 0; i < ng; i++) {
		rlink_cmd_args(cmd, e[g[i].from].a->webhook_id);
		rlink_cmd_argnum(cmd, (int64_t)g[i].n);
		for (j = g[i].from; j < g[i].from + g[i].n; j++) {
			rfc3339_format(e[j].a->at_ms, ts, sizeof(ts));
			buf_reset(entry);
			attempt_json(e[j].a, ts, entry);
			store_arg_buf(cmd, entry);
		}
	}
	return rlink_send(store_link(st), cmd);
}

void store_log_attempts(struct store *st, const struct store_attempt *a,
			size_t n)
{
	struct log_entry *e = NULL;
	struct log_group *g = NULL;
	struct buf entry;
	size_t i, m = 0, ng = 0, first = 0, in_cmd = 0, sent = 0, end;

	/* A success path must not wait: without a connection the entries
	 * are dropped, not queued. */
	if (n == 0)
		return;
	if (store_is_ready(st)) {
		e = malloc(n * sizeof(*e));
		g = malloc(n * sizeof(*g));
	}
	if (!e || !g) {
		log_debug("attempt log entries dropped", "count=%zu", n);
		free(e);
		free(g);
		return;
	}
	for (i = 0; i < n; i++) {
		if (a[i].webhook_id) {
			e[m].a = &a[i];
			e[m].pos = i;
			m++;
		}
	}
	qsort(e, m, sizeof(*e), log_entry_cmp);
	/* Each webhook's newest ATTEMPTS_KEEP. */
	for (i = 0; i < m; i = end) {
		for (end = i + 1; end < m; end++)
			if (strcmp(e[end].a->webhook_id, e[i].a->webhook_id) != 0)
				break;
		g[ng].from = end - i > ATTEMPTS_KEEP ? end - ATTEMPTS_KEEP : i;
		g[ng].n = end - g[ng].from;
		ng++;
	}
	/* Whole groups, up to LOG_BATCH_MAX entries per call. */
	buf_init(&entry, ENTRY_MAX);
	for (i = 0; i <= ng; i++) {
		if (i > first && (i == ng || in_cmd + g[i].n > LOG_BATCH_MAX)) {
			if (log_send(st, e, g + first, i - first, &entry) < 0)
				break;
			sent += in_cmd;
			first = i;
			in_cmd = 0;
		}
		if (i < ng)
			in_cmd += g[i].n;
	}
	buf_release(&entry);
	if (sent < m)
		log_debug("attempt log entries not sent", "count=%zu", m - sent);
	free(e);
	free(g);
}

struct attempts_ctx {
	store_attempts_cb *cb;
	void *arg;
};

/* LRANGE of an attempt log: bulk strings, newest first. */
static void on_attempts(void *arg, enum rlink_status rs,
			const struct rlink_reply *r)
{
	struct attempts_ctx *c = arg;
	const char *items[ATTEMPTS_KEEP];
	size_t lens[ATTEMPTS_KEEP];
	size_t i, n = 0, count;

	if (rs == RLINK_CANCELLED) {
		free(c);
		return;
	}
	if (rs != RLINK_OK) {
		c->cb(c->arg, store_status_from(rs), NULL, NULL, 0);
	} else if (rlink_reply_type(r) != RLINK_ARRAY) {
		log_warn("redis answered unexpectedly", "op=%s", "attempts_list");
		c->cb(c->arg, STORE_ERROR, NULL, NULL, 0);
	} else {
		count = rlink_reply_count(r);
		for (i = 0; i < count && n < ATTEMPTS_KEEP; i++) {
			items[n] = rlink_reply_str(rlink_reply_at(r, i), &lens[n]);
			if (items[n])
				n++;
		}
		c->cb(c->arg, STORE_OK, items, lens, n);
	}
	free(c);
}

int store_attempts_list(struct store *st, const char *webhook_id,
			store_attempts_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("attempts_list", NULL);
	struct attempts_ctx *c = malloc(sizeof(*c));

	if (!cmd || !c) {
		rlink_cmd_free(cmd);
		free(c);
		return -1;
	}
	c->cb = cb;
	c->arg = arg;
	rlink_cmd_args(cmd, "LRANGE");
	rlink_cmd_key(cmd, STORE_KEY("attempts:"), webhook_id, NULL);
	rlink_cmd_args(cmd, "0");
	rlink_cmd_argnum(cmd, ATTEMPTS_KEEP - 1);
	if (store_start(st, cmd, on_attempts, c, arg) < 0) {
		free(c);
		return -1;
	}
	return 0;
}

/* ---- claims: retries and notices ---- */

struct claim_ctx {
	store_claim_cb *cb;
	void *arg;
	const char *name; /* for logs */
};

/* A claim script's answer: {id, payload, key} triples ("" key = none).
 * Replies' strings are NUL-terminated. */
static void on_claim(void *arg, enum rlink_status rs,
		     const struct rlink_reply *r)
{
	struct claim_ctx *c = arg;
	struct store_claimed *items = NULL;
	size_t i, n = 0, count = 0;

	if (rs == RLINK_CANCELLED)
		goto out;
	if (rs != RLINK_OK) {
		c->cb(c->arg, store_status_from(rs), NULL, 0);
		goto out;
	}
	count = rlink_reply_count(r);
	if (rlink_reply_type(r) != RLINK_ARRAY || count % 3 != 0) {
		log_warn("redis script answered unexpectedly", "op=%s", c->name);
		c->cb(c->arg, STORE_ERROR, NULL, 0);
		goto out;
	}
	if (count > 0) {
		items = calloc(count / 3, sizeof(*items));
		if (!items) {
			/* The claims stand: their leases run out and they
			 * come back, so nothing is lost. */
			c->cb(c->arg, STORE_ERROR, NULL, 0);
			goto out;
		}
	}
	for (i = 0; i + 2 < count; i += 3) {
		size_t klen;
		const char *id = rlink_reply_str(rlink_reply_at(r, i), NULL);
		const char *p = rlink_reply_str(rlink_reply_at(r, i + 1),
						&items[n].payload_len);
		const char *key = rlink_reply_str(rlink_reply_at(r, i + 2), &klen);

		if (!id || !p || !key)
			continue;
		items[n].id = id;
		items[n].payload = p;
		items[n].key = klen ? key : NULL;
		n++;
	}
	c->cb(c->arg, STORE_OK, items, n);
	free(items);
out:
	free(c);
}

static int start_claim(struct store *st, const char *name,
		       const struct rlink_script *script, int retries,
		       int64_t now, int64_t lease_ms, size_t max,
		       store_claim_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new(name, script);
	struct claim_ctx *c = malloc(sizeof(*c));

	if (!cmd || !c) {
		rlink_cmd_free(cmd);
		free(c);
		return -1;
	}
	c->cb = cb;
	c->arg = arg;
	c->name = name;
	if (retries) {
		rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
		rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
		rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
		rlink_cmd_key(cmd, STORE_KEY("retry-claims"), NULL);
		rlink_cmd_key(cmd, STORE_KEY("seq"), NULL);
	} else {
		rlink_cmd_key(cmd, STORE_KEY("outbox"), NULL);
		rlink_cmd_key(cmd, STORE_KEY("notices"), NULL);
	}
	rlink_cmd_argnum(cmd, now);
	rlink_cmd_argnum(cmd, lease_ms > 0 ? lease_ms : 1);
	rlink_cmd_argnum(cmd, (int64_t)(max < CLAIM_MAX ? max : CLAIM_MAX));
	if (store_start(st, cmd, on_claim, c, arg) < 0) {
		free(c);
		return -1;
	}
	return 0;
}

int store_retry_claim(struct store *st, int64_t now_ms, int64_t lease_ms,
		      size_t max, store_claim_cb *cb, void *arg)
{
	return start_claim(st, "retry_claim", &lua_retry_claim, 1, now_ms,
			   lease_ms, max, cb, arg);
}

int store_outbox_claim(struct store *st, int64_t now_ms, int64_t lease_ms,
		       size_t max, store_claim_cb *cb, void *arg)
{
	return start_claim(st, "outbox_claim", &lua_outbox_claim, 0, now_ms,
			   lease_ms, max, cb, arg);
}

int store_outbox_ack(struct store *st, const char *notice_id,
		     store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("outbox_ack", &lua_outbox_ack);

	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("outbox"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("notices"), NULL);
	rlink_cmd_args(cmd, notice_id);
	return store_start_write(st, cmd, cb, arg);
}

int store_retry_renew(struct store *st, const char *retry_id,
		      const char *token, int64_t until_ms, store_write_cb *cb,
		      void *arg)
{
	struct rlink_cmd *cmd;

	if (!retry_id || !token)
		return -1;
	cmd = rlink_cmd_new("retry_renew", &lua_retry_renew);
	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-claims"), NULL);
	rlink_cmd_args(cmd, retry_id);
	rlink_cmd_args(cmd, token);
	rlink_cmd_argnum(cmd, until_ms);
	return store_start_write(st, cmd, cb, arg);
}

int store_retry_drop(struct store *st, const char *retry_id,
		     const char *token, store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd;

	if (!retry_id || !token)
		return -1;
	cmd = rlink_cmd_new("retry_drop", &lua_retry_drop);
	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-claims"), NULL);
	rlink_cmd_args(cmd, retry_id);
	rlink_cmd_args(cmd, token);
	return store_start_write(st, cmd, cb, arg);
}

int store_retry_defer(struct store *st, const char *webhook_id, const char *name,
		      const char *job, int64_t due_ms, store_write_cb *cb,
		      void *arg)
{
	struct rlink_cmd *cmd;

	if (!name || !name[0])
		return -1;
	cmd = rlink_cmd_new("retry_defer", &lua_retry_defer);
	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_args(cmd, webhook_id);
	rlink_cmd_argnum(cmd, due_ms);
	rlink_cmd_args(cmd, job);
	rlink_cmd_args(cmd, name);
	return store_start_write(st, cmd, cb, arg);
}

struct counts_ctx {
	store_counts_cb *cb;
	void *arg;
};

static void on_counts(void *arg, enum rlink_status rs,
		      const struct rlink_reply *r)
{
	struct counts_ctx *c = arg;
	enum store_status status = STORE_UNAVAILABLE;
	int64_t retries = 0, notices = 0;

	if (rs == RLINK_OK) {
		if (rlink_reply_count(r) == 2 &&
		    rlink_reply_int64(rlink_reply_at(r, 0), &retries) == 0 &&
		    rlink_reply_int64(rlink_reply_at(r, 1), &notices) == 0)
			status = STORE_OK;
		else
			status = STORE_ERROR;
	}
	if (rs != RLINK_CANCELLED)
		c->cb(c->arg, status, retries, notices);
	free(c);
}

int store_counts(struct store *st, store_counts_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("counts", &lua_counts);
	struct counts_ctx *c = malloc(sizeof(*c));

	if (!cmd || !c) {
		rlink_cmd_free(cmd);
		free(c);
		return -1;
	}
	c->cb = cb;
	c->arg = arg;
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("outbox"), NULL);
	if (store_start(st, cmd, on_counts, c, arg) < 0) {
		free(c);
		return -1;
	}
	return 0;
}
