/*
 * store_outcomes: the failure rule, the attempt log, retries and the
 * notice outbox in Redis. A domain store on the store's Redis link; see
 * include/promo_webhooks/store_outcomes.h for the keys and the rules.
 */
#include "promo_webhooks/store_outcomes.h"
#include "promo_webhooks/buf.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_scripts.h"

#define ENTRY_MAX ((size_t)4 << 20) /* the link's cap on one command */
#define ATTEMPTS_KEEP 100        /* entries of an attempt log */
#define ATTEMPTS_TTL_MS ((int64_t)30 * 86400 * 1000) /* an idle log's life */
#define LOG_BATCH_MAX 256        /* attempts in one store_log_attempts EVAL */
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
		buf_addf(out, "%ld", a->status);
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
	buf_addf(out, ",\"attempt\":%d,", a->attempt);
	add_outcome(out, a);
	buf_addf(out, ",\"durationMs\":%lld", (long long)a->duration_ms);
	/* Beyond the contract's fields: what a failing receiver answered. */
	if (a->response && a->response_len) {
		buf_adds(out, ",\"responseBody\":");
		buf_add_json_string(out, a->response,
				    a->response_len < 1024 ? a->response_len : 1024);
	}
	buf_addc(out, '}');
}

/* A built text as an argument; one over the cap fails the command. */
static void arg_buf(struct rlink_cmd *cmd, const struct buf *b)
{
	if (b->failed)
		rlink_cmd_fail(cmd);
	else
		rlink_cmd_arg(cmd, buf_str(b), b->len);
}

/* ---- the failure rule ---- */

struct failure_ctx {
	store_failure_cb *cb;
	void *arg;
};

/* {"counted"} / {"disabled", v, nid} / {"inactive"} / {"unreadable"} */
static void on_failure(void *arg, enum rlink_status rs,
		       const struct rlink_reply *r)
{
	struct failure_ctx *f = arg;
	enum store_failure_result result = STORE_FAILURE_INACTIVE;
	enum store_status status = STORE_UNAVAILABLE;
	const struct rlink_reply *s = NULL;

	if (rs == RLINK_OK) {
		status = STORE_ERROR;
		s = rlink_reply_at(r, 0);
		if (!s) {
			log_warn("redis script answered unexpectedly", "op=%s",
				 "record_failure");
		} else if (rlink_reply_is(s, "counted")) {
			status = STORE_OK;
			result = STORE_FAILURE_COUNTED;
		} else if (rlink_reply_is(s, "disabled")) {
			status = STORE_OK;
			result = STORE_FAILURE_DISABLED;
		} else if (rlink_reply_is(s, "inactive")) {
			status = STORE_OK;
		} else if (rlink_reply_is(s, "unreadable")) {
			log_warn("stored webhook unreadable", "op=%s", "record_failure");
		} else {
			log_warn("redis script answered unexpectedly", "op=%s",
				 "record_failure");
		}
	}
	if (rs != RLINK_CANCELLED)
		f->cb(f->arg, status, result);
	free(f);
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
		event_format_time(a->at_ms, ts, sizeof(ts));
		at_text = ts;
	}
	cmd = rlink_cmd_new("record_failure", &lua_record_failure);
	ctx = malloc(sizeof(*ctx));
	if (!cmd || !ctx) {
		rlink_cmd_free(cmd);
		free(ctx);
		return -1;
	}
	ctx->cb = cb;
	ctx->arg = arg;
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
	rlink_cmd_key(cmd, STORE_KEY("version"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("settings"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("seq"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("notices"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("outbox"), NULL);
	rlink_cmd_args(cmd, a->webhook_id);
	rlink_cmd_args(cmd, store_channel(st));
	arg_buf(cmd, &entry);
	rlink_cmd_argnum(cmd, ATTEMPTS_TTL_MS);
	rlink_cmd_argnum(cmd, a->at_ms);
	rlink_cmd_args(cmd, at_text);
	arg_buf(cmd, &tail);
	rlink_cmd_argnum(cmd, f->window_ms > 0 ? f->window_ms : 1);
	rlink_cmd_argnum(cmd, f->threshold > 0 ? f->threshold : 1);
	rlink_cmd_args(cmd, f->retry_id ? f->retry_id : "");
	rlink_cmd_args(cmd, f->next_job ? f->next_job : "");
	rlink_cmd_argnum(cmd, f->next_due_ms);
	rlink_cmd_argnum(cmd, ATTEMPTS_KEEP);
	buf_release(&entry);
	buf_release(&tail);
	if (store_start(st, cmd, on_failure, ctx, arg) < 0) {
		free(ctx);
		return -1;
	}
	return 0;
}

int store_record_success(struct store *st, const struct store_attempt *a,
			 const char *retry_id, store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd;
	struct buf entry;
	char ts[32];

	if (!a->webhook_id)
		return -1;
	cmd = rlink_cmd_new("record_success", &lua_record_success);
	if (!cmd)
		return -1;
	event_format_time(a->at_ms, ts, sizeof(ts));
	buf_init(&entry, ENTRY_MAX);
	attempt_json(a, ts, &entry);
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("attempts:"), a->webhook_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_args(cmd, a->webhook_id);
	arg_buf(cmd, &entry);
	rlink_cmd_argnum(cmd, ATTEMPTS_TTL_MS);
	rlink_cmd_argnum(cmd, ATTEMPTS_KEEP);
	rlink_cmd_args(cmd, retry_id ? retry_id : "");
	buf_release(&entry);
	return store_start_write(st, cmd, cb, arg);
}

/* ---- the attempt log ---- */

/* Sends one batch (n <= LOG_BATCH_MAX) without waiting for its answer.
 * Returns 0, or -1 when it could not be sent. */
static int log_batch(struct store *st, const struct store_attempt *a, size_t n)
{
	struct rlink_cmd *cmd = rlink_cmd_new("log_attempts", &lua_log_attempts);
	struct buf entry;
	char ts[32];
	size_t i;

	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	for (i = 0; i < n; i++)
		rlink_cmd_key(cmd, STORE_KEY("attempts:"), a[i].webhook_id, NULL);
	rlink_cmd_argnum(cmd, ATTEMPTS_TTL_MS);
	rlink_cmd_argnum(cmd, ATTEMPTS_KEEP);
	buf_init(&entry, ENTRY_MAX);
	for (i = 0; i < n; i++) {
		rlink_cmd_args(cmd, a[i].webhook_id);
		event_format_time(a[i].at_ms, ts, sizeof(ts));
		buf_reset(&entry);
		attempt_json(&a[i], ts, &entry);
		arg_buf(cmd, &entry);
	}
	buf_release(&entry);
	return rlink_send(store_link(st), cmd);
}

void store_log_attempts(struct store *st, const struct store_attempt *a,
			size_t n)
{
	size_t done = 0, chunk, i;

	/* A success path must not wait: without a connection the entries
	 * are dropped, not queued. */
	while (done < n) {
		chunk = n - done < LOG_BATCH_MAX ? n - done : LOG_BATCH_MAX;
		for (i = done; i < done + chunk; i++) {
			if (!a[i].webhook_id)
				break;
		}
		if (i < done + chunk || !store_is_ready(st) ||
		    log_batch(st, a + done, chunk) < 0) {
			log_debug("attempt log entries dropped", "count=%zu",
				  n - done);
			return;
		}
		done += chunk;
	}
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
		c->cb(c->arg, STORE_UNAVAILABLE, NULL, NULL, 0);
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
		c->cb(c->arg, STORE_UNAVAILABLE, NULL, 0);
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

int store_retry_defer(struct store *st, const char *webhook_id,
		      const char *job, int64_t due_ms, store_write_cb *cb,
		      void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("retry_defer", &lua_retry_defer);

	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("seq"), NULL);
	rlink_cmd_args(cmd, webhook_id);
	rlink_cmd_argnum(cmd, due_ms);
	rlink_cmd_args(cmd, job);
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
