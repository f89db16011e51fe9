/*
 * store: what the three domain stores share: the handle that holds the
 * Redis link (rlink.c, the transport), the status codes and the write
 * answer every write script gives. See include/promo_webhooks/store.h.
 */
#include "promo_webhooks/store.h"
#include "promo_webhooks/buf.h"
#include "promo_webhooks/log.h"

#include <stdio.h>
#include <stdlib.h>

#include "lua_scripts.h"

struct store {
	struct rlink *rl;
	char *channel;                 /* pw:changes:<db> */
	rlink_message_cb *listener;    /* store_hooks.c's change feed */
	void *listener_arg;
};

/* A write in flight: whom to answer. */
struct write_ctx {
	store_write_cb *cb;
	void *arg;
	const char *name; /* for logs */
};

const char *store_status_name(enum store_status status)
{
	switch (status) {
	case STORE_OK: return "ok";
	case STORE_NOT_FOUND: return "not_found";
	case STORE_CONFLICT: return "conflict";
	case STORE_UNAVAILABLE: return "unavailable";
	case STORE_ERROR: return "error";
	}
	return "unknown";
}

enum store_status store_status_from(enum rlink_status status)
{
	if (status == RLINK_OK)
		return STORE_OK;
	return status == RLINK_REJECTED ? STORE_ERROR : STORE_UNAVAILABLE;
}

static void on_message(void *arg, const char *msg, size_t len)
{
	struct store *st = arg;

	if (st->listener)
		st->listener(st->listener_arg, msg, len);
}

struct store *store_new(struct event_base *base, const struct config *cfg,
			char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));
	struct buf ch;

	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	buf_init(&ch, 64);
	buf_addf(&ch, "pw:changes:%d", cfg->redis_db);
	st->channel = ch.failed ? NULL : buf_detach(&ch, NULL);
	buf_release(&ch);
	if (!st->channel) {
		snprintf(err, errlen, "cannot set up the redis store: out of memory");
		free(st);
		return NULL;
	}
	st->rl = rlink_new(base, cfg, st->channel, lua_scripts, lua_scripts_count,
			   err, errlen);
	if (!st->rl) {
		free(st->channel);
		free(st);
		return NULL;
	}
	rlink_subscribe(st->rl, on_message, st);
	return st;
}

void store_free(struct store *st)
{
	if (!st)
		return;
	rlink_free(st->rl);
	free(st->listener_arg);
	free(st->channel);
	free(st);
}

int store_is_ready(const struct store *st)
{
	return rlink_is_ready(st->rl);
}

void store_cancel(struct store *st, void *arg)
{
	rlink_cancel(st->rl, arg);
}

struct rlink *store_link(struct store *st)
{
	return st->rl;
}

const char *store_channel(const struct store *st)
{
	return st->channel;
}

void store_set_listener(struct store *st, rlink_message_cb *cb, void *arg)
{
	free(st->listener_arg);
	st->listener = cb;
	st->listener_arg = arg;
}

int store_start(struct store *st, struct rlink_cmd *cmd, rlink_done_cb *done,
		void *ctx, void *arg)
{
	return rlink_start(st->rl, cmd, done, ctx, arg);
}

/* {"ok", n} / {"not_found"} / {"conflict"} */
static enum store_status parse_write(const struct rlink_reply *r, int64_t *n)
{
	const struct rlink_reply *s = rlink_reply_at(r, 0);

	*n = 0;
	if (!s)
		return STORE_ERROR;
	if (rlink_reply_is(s, "ok")) {
		if (rlink_reply_count(r) < 2 ||
		    rlink_reply_int64(rlink_reply_at(r, 1), n) < 0)
			return STORE_ERROR;
		return STORE_OK;
	}
	if (rlink_reply_is(s, "not_found"))
		return STORE_NOT_FOUND;
	if (rlink_reply_is(s, "conflict"))
		return STORE_CONFLICT;
	return STORE_ERROR;
}

static void on_write(void *arg, enum rlink_status rs,
		     const struct rlink_reply *r)
{
	struct write_ctx *w = arg;
	enum store_status status = store_status_from(rs);
	int64_t n = 0;

	if (rs == RLINK_OK) {
		status = parse_write(r, &n);
		if (status == STORE_ERROR)
			log_warn("redis script answered unexpectedly", "op=%s",
				 w->name);
	}
	if (rs != RLINK_CANCELLED)
		w->cb(w->arg, status, status == STORE_OK ? n : 0);
	free(w);
}

int store_start_write(struct store *st, struct rlink_cmd *cmd,
		      store_write_cb *cb, void *arg)
{
	struct write_ctx *w;

	if (!cmd)
		return -1;
	w = malloc(sizeof(*w));
	if (!w) {
		rlink_cmd_free(cmd);
		return -1;
	}
	w->cb = cb;
	w->arg = arg;
	w->name = rlink_cmd_name(cmd);
	if (rlink_start(st->rl, cmd, on_write, w, arg) < 0) {
		free(w);
		return -1;
	}
	return 0;
}

void store_arg_buf(struct rlink_cmd *cmd, const struct buf *b)
{
	if (b->failed)
		rlink_cmd_fail(cmd);
	else
		rlink_cmd_arg(cmd, buf_str(b), b->len);
}
