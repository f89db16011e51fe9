/*
 * rlink: the Redis link under the store modules; the only file that
 * includes hiredis. See include/promo_webhooks/rlink.h.
 *
 * Two connections share the libevent loop: "cmd" for commands and "sub" for
 * the pub/sub subscription (a subscribed connection can do nothing else).
 * hiredis 0.14.1 async has no timeouts, so a watchdog timer kills a
 * connection that takes too long to connect or to answer; killing (or any
 * disconnect) makes hiredis call every pending callback with a NULL reply,
 * which ends the command RLINK_UNAVAILABLE. A lost connection is
 * re-established with exponential backoff.
 *
 * Every started command is a struct rlink_op in one list: queued (waiting
 * for the cmd connection), sent (owned by hiredis until its callback) or
 * failed (waiting for the deferred-completion event, so that no callback
 * ever runs inside the call that started the command).
 */
#include "promo_webhooks/rlink.h"
#include "promo_webhooks/clock.h"
#include "promo_webhooks/buf.h"
#include "promo_webhooks/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#define CONNECT_TIMEOUT_MS 2000  /* TCP connect plus handshake */
#define COMMAND_TIMEOUT_MS 5000  /* no reply progress for this long: dead */
#define QUEUE_TIMEOUT_MS 5000    /* longest wait for a connection */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define WATCHDOG_MS 100
#define CMD_ARGS_MAX ((size_t)4 << 20) /* cap on one command's arguments */

struct rlink_cmd {
	const char *name;                 /* for logs */
	const struct rlink_script *script; /* NULL for a plain command */
	size_t nkeys;                     /* script keys, before the arguments */
	size_t argc;                      /* keys and arguments */
	size_t argcap;
	size_t *argoff;                   /* offsets into args */
	size_t *arglen;
	struct buf args;                  /* keys and arguments, back to back */
	int failed;                       /* a build error: never started */
};

enum op_state {
	OP_QUEUED, /* waiting for the cmd connection */
	OP_SENT,   /* handed to hiredis: only its callback ends it */
	OP_FAILED, /* waiting for the deferred-completion event */
};

struct rlink_op {
	struct rlink_op *prev, *next; /* in rl->ops, oldest first */
	struct rlink *rl;
	struct rlink_cmd *cmd;
	rlink_done_cb *done;          /* NULL for rlink_send */
	void *arg;
	const void *owner;            /* what rlink_cancel matches */
	enum op_state state;
	int cancelled;                /* end RLINK_CANCELLED whatever happens */
	int eval_fallback;            /* resent as EVAL after NOSCRIPT */
	int64_t deadline_ms;          /* while queued: fail after this */
};

enum conn_state {
	CONN_DOWN,       /* no context; retry_ev may be pending */
	CONN_CONNECTING, /* TCP connect in progress */
	CONN_HANDSHAKE,  /* AUTH / SELECT / SCRIPT LOAD or SUBSCRIBE sent */
	CONN_READY,      /* usable */
};

struct rlink_conn {
	struct rlink *rl;
	const char *name;        /* "cmd" or "sub", for logs */
	int is_sub;              /* the subscriber connection */
	redisAsyncContext *ac;   /* NULL while down */
	enum conn_state state;
	int64_t state_since_ms;  /* monotonic time of the last state change */
	unsigned failures;       /* consecutive failed attempts, for backoff */
	int handshake_left;      /* handshake replies still expected */
	int kill_pending;        /* the watchdog drops it on its next tick */
	size_t n_sent;           /* commands awaiting replies */
	int64_t progress_ms;     /* last reply, or first send after idle */
	struct event *retry_ev;  /* reconnect timer */
};

struct rlink {
	struct event_base *base;
	const struct config *cfg;
	const char *channel;               /* the subscription */
	const struct rlink_script *const *scripts;
	size_t n_scripts;
	struct rlink_conn cmd;
	struct rlink_conn sub;
	struct rlink_op *ops_head, *ops_tail;
	struct event *watchdog_ev;
	struct event *defer_ev;            /* completes OP_FAILED ops */
	rlink_message_cb *message_cb;
	void *message_arg;
	int closing;                       /* rlink_free in progress */
};

/* ---- commands ---- */

struct rlink_cmd *rlink_cmd_new(const char *name,
				const struct rlink_script *script)
{
	struct rlink_cmd *cmd = calloc(1, sizeof(*cmd));

	if (!cmd)
		return NULL;
	cmd->name = name;
	cmd->script = script;
	buf_init(&cmd->args, CMD_ARGS_MAX);
	return cmd;
}

void rlink_cmd_free(struct rlink_cmd *cmd)
{
	if (!cmd)
		return;
	buf_release(&cmd->args);
	free(cmd->argoff);
	free(cmd->arglen);
	free(cmd);
}

const char *rlink_cmd_name(const struct rlink_cmd *cmd)
{
	return cmd->name;
}

/* Makes room for one more argument entry. */
static int cmd_grow(struct rlink_cmd *cmd)
{
	size_t cap = cmd->argcap ? cmd->argcap * 2 : 16;
	size_t *off, *len;

	if (cmd->argc < cmd->argcap)
		return 0;
	off = realloc(cmd->argoff, cap * sizeof(*off));
	if (!off)
		return -1;
	cmd->argoff = off;
	len = realloc(cmd->arglen, cap * sizeof(*len));
	if (!len)
		return -1;
	cmd->arglen = len;
	cmd->argcap = cap;
	return 0;
}

/* Ends the entry whose bytes began at start. */
static void cmd_end_entry(struct rlink_cmd *cmd, size_t start)
{
	if (cmd->args.failed || cmd_grow(cmd) < 0) {
		cmd->failed = 1;
		return;
	}
	cmd->argoff[cmd->argc] = start;
	cmd->arglen[cmd->argc] = cmd->args.len - start;
	cmd->argc++;
}

void rlink_cmd_arg(struct rlink_cmd *cmd, const char *p, size_t len)
{
	size_t start = cmd->args.len;

	buf_add(&cmd->args, p, len);
	cmd_end_entry(cmd, start);
}

void rlink_cmd_args(struct rlink_cmd *cmd, const char *s)
{
	rlink_cmd_arg(cmd, s, strlen(s));
}

void rlink_cmd_argnum(struct rlink_cmd *cmd, int64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%lld", (long long)v);
	rlink_cmd_args(cmd, num);
}

void rlink_cmd_key(struct rlink_cmd *cmd, const char *part, ...)
{
	size_t start = cmd->args.len;
	va_list ap;

	/* A script's keys come first: EVAL numkeys key... arg... */
	if (cmd->script && cmd->nkeys != cmd->argc) {
		cmd->failed = 1;
		return;
	}
	va_start(ap, part);
	for (; part; part = va_arg(ap, const char *))
		buf_adds(&cmd->args, part);
	va_end(ap);
	cmd_end_entry(cmd, start);
	if (cmd->script && !cmd->failed)
		cmd->nkeys++;
}

void rlink_cmd_fail(struct rlink_cmd *cmd)
{
	cmd->failed = 1;
}

/* ---- operation bookkeeping ---- */

static void op_link(struct rlink *rl, struct rlink_op *op)
{
	op->prev = rl->ops_tail;
	op->next = NULL;
	if (rl->ops_tail)
		rl->ops_tail->next = op;
	else
		rl->ops_head = op;
	rl->ops_tail = op;
}

static void op_unlink(struct rlink *rl, struct rlink_op *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else
		rl->ops_head = op->next;
	if (op->next)
		op->next->prev = op->prev;
	else
		rl->ops_tail = op->prev;
	op->prev = op->next = NULL;
}

/* Ends an operation: unlinks, calls back once, frees. */
static void op_end(struct rlink_op *op, enum rlink_status status,
		   const redisReply *reply)
{
	struct rlink *rl = op->rl;

	op_unlink(rl, op);
	if (op->cancelled || rl->closing) {
		status = RLINK_CANCELLED;
		reply = NULL;
	}
	if (op->done)
		op->done(op->arg, status, (const struct rlink_reply *)reply);
	rlink_cmd_free(op->cmd);
	free(op);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

/* Hands an op to hiredis. Returns 0, or -1 when the context refused (it
 * is shutting down) or memory ran out: the op stays as it was. */
static int op_send(struct rlink *rl, struct rlink_op *op)
{
	struct rlink_conn *conn = &rl->cmd;
	const struct rlink_cmd *cmd = op->cmd;
	const char **argv;
	size_t *argvlen, i, n = 0;
	char numkeys[24];
	int rc;

	argv = calloc(cmd->argc + 3, sizeof(*argv));
	argvlen = calloc(cmd->argc + 3, sizeof(*argvlen));
	if (!argv || !argvlen) {
		free(argv);
		free(argvlen);
		return -1;
	}
	if (cmd->script) {
		if (!op->eval_fallback) {
			argv[0] = "EVALSHA";
			argv[1] = cmd->script->sha;
			argvlen[1] = strlen(cmd->script->sha);
		} else {
			argv[0] = "EVAL";
			argv[1] = cmd->script->src;
			argvlen[1] = cmd->script->len;
		}
		argvlen[0] = strlen(argv[0]);
		snprintf(numkeys, sizeof(numkeys), "%zu", cmd->nkeys);
		argv[2] = numkeys;
		argvlen[2] = strlen(numkeys);
		n = 3;
	}
	for (i = 0; i < cmd->argc; i++) {
		argv[n] = cmd->args.data + cmd->argoff[i];
		argvlen[n] = cmd->arglen[i];
		n++;
	}
	rc = redisAsyncCommandArgv(conn->ac, on_reply, op, (int)n, argv, argvlen);
	free(argv);
	free(argvlen);
	if (rc != REDIS_OK)
		return -1;
	op->state = OP_SENT;
	if (conn->n_sent++ == 0)
		conn->progress_ms = clock_mono_ms();
	return 0;
}

static void flush_queue(struct rlink *rl)
{
	struct rlink_op *op, *next;

	for (op = rl->ops_head; op; op = next) {
		next = op->next;
		if (op->state != OP_QUEUED)
			continue;
		if (rl->cmd.state != CONN_READY || op_send(rl, op) < 0)
			break;
	}
}

static struct rlink_op *op_new(struct rlink *rl, struct rlink_cmd *cmd,
			       rlink_done_cb *done, void *arg,
			       const void *owner)
{
	struct rlink_op *op;

	if (!cmd)
		return NULL;
	if (cmd->failed || cmd->args.failed || (cmd->argc == 0 && !cmd->script)) {
		rlink_cmd_free(cmd);
		return NULL;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		rlink_cmd_free(cmd);
		return NULL;
	}
	op->rl = rl;
	op->cmd = cmd;
	op->done = done;
	op->arg = arg;
	op->owner = owner;
	return op;
}

int rlink_start(struct rlink *rl, struct rlink_cmd *cmd, rlink_done_cb *done,
		void *arg, const void *owner)
{
	struct rlink_op *op = op_new(rl, cmd, done, arg, owner);

	if (!op)
		return -1;
	op_link(rl, op);
	op->state = OP_QUEUED;
	op->deadline_ms = clock_mono_ms() + QUEUE_TIMEOUT_MS;
	if (rl->cmd.state == CONN_READY) {
		if (op_send(rl, op) == 0)
			return 0;
	} else if (rl->cmd.state == CONN_DOWN && rl->cmd.failures > 0) {
		/* A reconnect attempt already failed: do not make the
		 * caller wait seconds for an answer it can have now. */
		op->state = OP_FAILED;
		event_active(rl->defer_ev, EV_TIMEOUT, 0);
	}
	return 0;
}

int rlink_send(struct rlink *rl, struct rlink_cmd *cmd)
{
	struct rlink_op *op;

	if (rl->cmd.state != CONN_READY) {
		rlink_cmd_free(cmd);
		return -1;
	}
	op = op_new(rl, cmd, NULL, NULL, NULL);
	if (!op)
		return -1;
	op_link(rl, op);
	if (op_send(rl, op) < 0) {
		op_unlink(rl, op);
		rlink_cmd_free(op->cmd);
		free(op);
		return -1;
	}
	return 0;
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rlink *rl = arg;
	struct rlink_op *op, *next;

	/* Callbacks may start or cancel ops: restart the walk after each. */
	for (op = rl->ops_head; op; op = next) {
		next = op->next;
		if (op->state == OP_FAILED) {
			op_end(op, RLINK_UNAVAILABLE, NULL);
			next = rl->ops_head;
		}
	}
}

void rlink_cancel(struct rlink *rl, const void *owner)
{
	struct rlink_op *op;

	for (op = rl->ops_head; op; op = op->next) {
		if (op->owner == owner && op->done)
			op->cancelled = 1;
	}
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rlink_op *op = privdata;
	struct rlink *rl = op->rl;
	struct rlink_conn *conn = &rl->cmd;
	redisReply *reply = r;

	if (conn->ac == ac && conn->n_sent > 0) {
		conn->n_sent--;
		conn->progress_ms = clock_mono_ms();
	}
	if (!reply) {
		/* The connection went away before the answer. */
		op_end(op, RLINK_UNAVAILABLE, NULL);
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		if (op->cmd->script && !op->eval_fallback &&
		    strncmp(reply->str, "NOSCRIPT", 8) == 0 && conn->ac == ac &&
		    !rl->closing) {
			/* The script cache was flushed (restart, failover,
			 * SCRIPT FLUSH): send the source instead. */
			op->eval_fallback = 1;
			op->state = OP_QUEUED;
			if (op_send(rl, op) == 0)
				return;
		}
		log_warn("redis command failed", "op=%s error=\"%.120s\"",
			 op->cmd->name, reply->str);
		op_end(op, RLINK_UNAVAILABLE, NULL);
		return;
	}
	op_end(op, RLINK_OK, reply);
}

/* ---- replies ---- */

enum rlink_type rlink_reply_type(const struct rlink_reply *r)
{
	const redisReply *rr = (const redisReply *)r;

	switch (rr->type) {
	case REDIS_REPLY_NIL: return RLINK_NIL;
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS: return RLINK_STRING;
	case REDIS_REPLY_INTEGER: return RLINK_INTEGER;
	case REDIS_REPLY_ARRAY: return RLINK_ARRAY;
	}
	return RLINK_OTHER;
}

const char *rlink_reply_str(const struct rlink_reply *r, size_t *len)
{
	const redisReply *rr = (const redisReply *)r;

	if (rr->type != REDIS_REPLY_STRING && rr->type != REDIS_REPLY_STATUS) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = rr->len;
	return rr->str;
}

int rlink_reply_is(const struct rlink_reply *r, const char *s)
{
	size_t len;
	const char *p = rlink_reply_str(r, &len);

	return p && len == strlen(s) && memcmp(p, s, len) == 0;
}

int rlink_reply_int64(const struct rlink_reply *r, int64_t *out)
{
	const redisReply *rr = (const redisReply *)r;
	char tmp[32], *end;
	long long v;

	if (rr->type == REDIS_REPLY_INTEGER) {
		*out = rr->integer;
		return 0;
	}
	if (rr->type == REDIS_REPLY_NIL) {
		*out = 0;
		return 0;
	}
	if (rr->type != REDIS_REPLY_STRING || rr->len == 0 || rr->len >= sizeof(tmp))
		return -1;
	memcpy(tmp, rr->str, rr->len);
	tmp[rr->len] = '\0';
	errno = 0;
	v = strtoll(tmp, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

size_t rlink_reply_count(const struct rlink_reply *r)
{
	const redisReply *rr = (const redisReply *)r;

	return rr->type == REDIS_REPLY_ARRAY ? rr->elements : 0;
}

const struct rlink_reply *rlink_reply_at(const struct rlink_reply *r, size_t i)
{
	const redisReply *rr = (const redisReply *)r;

	if (rr->type != REDIS_REPLY_ARRAY || i >= rr->elements)
		return NULL;
	return (const struct rlink_reply *)rr->element[i];
}

/* ---- connections ---- */

static void conn_connect(struct rlink_conn *conn);

static void conn_set_state(struct rlink_conn *conn, enum conn_state s)
{
	conn->state = s;
	conn->state_since_ms = clock_mono_ms();
}

/* After any loss of a connection: forget the context and schedule a new
 * attempt with exponential backoff. */
static void conn_lost(struct rlink_conn *conn, const char *why)
{
	struct rlink *rl = conn->rl;
	int64_t delay = BACKOFF_MIN_MS;
	struct timeval tv;
	unsigned i;

	if (conn->state == CONN_READY)
		log_warn("redis connection lost", "conn=%s reason=\"%s\"",
			 conn->name, why);
	else if (conn->failures < 3 || conn->failures % 12 == 0)
		log_warn("redis connect failed", "conn=%s attempt=%u reason=\"%s\"",
			 conn->name, conn->failures + 1, why);
	conn->ac = NULL;
	conn->n_sent = 0;
	conn->handshake_left = 0;
	conn->kill_pending = 0;
	conn_set_state(conn, CONN_DOWN);
	if (rl->closing)
		return;
	for (i = 0; i < conn->failures && delay < BACKOFF_MAX_MS; i++)
		delay *= 2;
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	conn->failures++;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	if (evtimer_add(conn->retry_ev, &tv) < 0)
		log_error("cannot arm redis reconnect timer", "conn=%s", conn->name);
	if (!conn->is_sub) {
		/* Whoever waits for the connection learns now that it is
		 * gone instead of at its deadline. */
		struct rlink_op *op;
		int any = 0;

		for (op = rl->ops_head; op; op = op->next) {
			if (op->state == OP_QUEUED) {
				op->state = OP_FAILED;
				any = 1;
			}
		}
		if (any)
			event_active(rl->defer_ev, EV_TIMEOUT, 0);
	}
}

/* Drops the connection on our side (timeout, bad handshake). Safe inside a
 * hiredis callback: hiredis then frees the context when it returns. */
static void conn_kill(struct rlink_conn *conn, const char *why)
{
	redisAsyncContext *ac = conn->ac;

	conn->ac = NULL;
	conn_lost(conn, why);
	if (ac)
		redisAsyncFree(ac);
}

static void conn_ready(struct rlink_conn *conn)
{
	struct rlink *rl = conn->rl;

	conn_set_state(conn, CONN_READY);
	if (conn->failures > 0)
		log_info("redis connected", "conn=%s after_attempts=%u",
			 conn->name, conn->failures);
	else
		log_info("redis connected", "conn=%s", conn->name);
	conn->failures = 0;
	if (!conn->is_sub)
		flush_queue(rl);
	else if (rl->message_cb)
		rl->message_cb(rl->message_arg, NULL, 0);
}

/* Replies to AUTH, SELECT and SCRIPT LOAD. privdata is the conn. */
static void on_handshake(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rlink_conn *conn = privdata;
	redisReply *reply = r;

	if (conn->ac != ac || !reply)
		return; /* a dead context's leftovers */
	if (reply->type == REDIS_REPLY_ERROR) {
		char why[160];

		/* e.g. WRONGPASS: the error text names no secret */
		snprintf(why, sizeof(why), "handshake refused: %.120s", reply->str);
		conn_kill(conn, why);
		return;
	}
	/* The subscriber becomes ready with its subscribe confirmation. */
	if (--conn->handshake_left == 0 && !conn->is_sub)
		conn_ready(conn);
}

/* Every reply of the subscription: the confirmation, then messages. */
static void on_sub_message(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rlink_conn *conn = privdata;
	struct rlink *rl = conn->rl;
	redisReply *reply = r;
	const redisReply *kind;

	if (conn->ac != ac || !reply)
		return;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING)
		return;
	kind = reply->element[0];
	if (kind->len == 9 && strncasecmp(kind->str, "subscribe", 9) == 0) {
		if (conn->state == CONN_HANDSHAKE)
			conn_ready(conn);
		return;
	}
	if (kind->len == 7 && strncasecmp(kind->str, "message", 7) == 0 &&
	    reply->element[2]->type == REDIS_REPLY_STRING && rl->message_cb)
		rl->message_cb(rl->message_arg, reply->element[2]->str,
			       reply->element[2]->len);
}

/* Sends one handshake command. Returns -1 when hiredis refused. */
static int conn_send(struct rlink_conn *conn, redisCallbackFn *fn, int argc,
		     const char **argv, const size_t *argvlen)
{
	if (redisAsyncCommandArgv(conn->ac, fn, conn, argc, argv, argvlen) != REDIS_OK)
		return -1;
	conn->handshake_left++;
	return 0;
}

/* Sends the handshake once TCP is up. Returns -1 when hiredis refused. */
static int conn_handshake(struct rlink_conn *conn)
{
	struct rlink *rl = conn->rl;
	const struct config *cfg = rl->cfg;
	char db[16];
	size_t i;

	conn_set_state(conn, CONN_HANDSHAKE);
	conn->handshake_left = 0;
	/* AUTH user password (an ACL user, Redis 6+) or AUTH password (the
	 * default user, requirepass). */
	if (cfg->redis_password && cfg->redis_user && cfg->redis_user[0]) {
		const char *argv[3] = { "AUTH", cfg->redis_user, cfg->redis_password };
		size_t argvlen[3] = { 4, strlen(cfg->redis_user),
				      strlen(cfg->redis_password) };

		if (conn_send(conn, on_handshake, 3, argv, argvlen) < 0)
			return -1;
	} else if (cfg->redis_password) {
		const char *argv[2] = { "AUTH", cfg->redis_password };
		size_t argvlen[2] = { 4, strlen(cfg->redis_password) };

		if (conn_send(conn, on_handshake, 2, argv, argvlen) < 0)
			return -1;
	}
	/* The subscriber selects the database too, though pub/sub ignores
	 * it: then every connection of this link shows the same db in
	 * CLIENT LIST, which is how operators (and tests) find them. */
	snprintf(db, sizeof(db), "%d", cfg->redis_db);
	{
		const char *argv[2] = { "SELECT", db };
		size_t argvlen[2] = { 6, strlen(db) };

		if (conn_send(conn, on_handshake, 2, argv, argvlen) < 0)
			return -1;
	}
	if (conn->is_sub) {
		const char *argv[2] = { "SUBSCRIBE", rl->channel };
		size_t argvlen[2] = { 9, strlen(rl->channel) };

		/* Readiness comes with the subscribe confirmation, which
		 * hiredis routes to the subscription callback. */
		return redisAsyncCommandArgv(conn->ac, on_sub_message, conn, 2,
					     argv, argvlen) == REDIS_OK ? 0 : -1;
	}
	/* The sha of each script is known (computed at build time); loading
	 * them now spares the first EVALSHA of each its NOSCRIPT. */
	for (i = 0; i < rl->n_scripts; i++) {
		const char *argv[3] = { "SCRIPT", "LOAD", rl->scripts[i]->src };
		size_t argvlen[3] = { 6, 4, rl->scripts[i]->len };

		if (conn_send(conn, on_handshake, 3, argv, argvlen) < 0)
			return -1;
	}
	return 0;
}

static void on_connect(const redisAsyncContext *cac, int status)
{
	struct rlink_conn *conn = cac->data;

	if (conn->ac != cac)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback. */
		conn->ac = NULL;
		conn_lost(conn, cac->errstr);
		return;
	}
	/* Freeing the context here would pull it from under hiredis, which
	 * goes on using it after this callback: leave it to the watchdog. */
	if (conn_handshake(conn) < 0)
		conn->kill_pending = 1;
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
	struct rlink_conn *conn = cac->data;

	/* hiredis frees the context after this callback. A context we
	 * killed ourselves is no longer conn->ac. */
	if (conn->ac != cac)
		return;
	conn->ac = NULL;
	conn_lost(conn, status == REDIS_OK ? "closed" : cac->errstr);
}

static void conn_connect(struct rlink_conn *conn)
{
	struct rlink *rl = conn->rl;
	redisAsyncContext *ac;

	conn_set_state(conn, CONN_CONNECTING);
	/* Note: a host name is resolved here, synchronously. */
	ac = redisAsyncConnect(rl->cfg->redis_host, rl->cfg->redis_port);
	if (!ac) {
		conn_lost(conn, "out of memory");
		return;
	}
	if (ac->err) {
		char why[128];

		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		conn_lost(conn, why);
		return;
	}
	ac->data = conn;
	if (redisLibeventAttach(ac, rl->base) != REDIS_OK ||
	    redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
	    redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK) {
		redisAsyncFree(ac);
		conn_lost(conn, "cannot attach to the event loop");
		return;
	}
	/* A dead peer behind a silent network is found by TCP keepalive on
	 * the subscriber, which otherwise never sends anything. */
	if (redisEnableKeepAlive(&ac->c) != REDIS_OK)
		log_debug("redis keepalive not enabled", "conn=%s", conn->name);
	conn->ac = ac;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rlink_conn *conn = arg;

	if (conn->state == CONN_DOWN && !conn->rl->closing)
		conn_connect(conn);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rlink *rl = arg;
	struct rlink_conn *conns[2] = { &rl->cmd, &rl->sub };
	struct rlink_op *op;
	int64_t now = clock_mono_ms();
	int i, any = 0;

	for (i = 0; i < 2; i++) {
		struct rlink_conn *conn = conns[i];

		if (conn->kill_pending)
			conn_kill(conn, "handshake could not be sent");
		else if ((conn->state == CONN_CONNECTING || conn->state == CONN_HANDSHAKE) &&
			 now - conn->state_since_ms > CONNECT_TIMEOUT_MS)
			conn_kill(conn, "connect timed out");
		else if (conn->state == CONN_READY && conn->n_sent > 0 &&
			 now - conn->progress_ms > COMMAND_TIMEOUT_MS)
			conn_kill(conn, "command timed out");
	}
	for (op = rl->ops_head; op; op = op->next) {
		if (op->state == OP_QUEUED && now > op->deadline_ms) {
			op->state = OP_FAILED;
			any = 1;
		}
	}
	if (any)
		event_active(rl->defer_ev, EV_TIMEOUT, 0);
}

/* ---- lifecycle ---- */

static int conn_init(struct rlink *rl, struct rlink_conn *conn,
		     const char *name, int is_sub)
{
	conn->rl = rl;
	conn->name = name;
	conn->is_sub = is_sub;
	conn->state = CONN_DOWN;
	conn->retry_ev = evtimer_new(rl->base, retry_cb, conn);
	return conn->retry_ev ? 0 : -1;
}

struct rlink *rlink_new(struct event_base *base, const struct config *cfg,
			const char *channel,
			const struct rlink_script *const *scripts, size_t n,
			char *err, size_t errlen)
{
	struct timeval tv = { 0, WATCHDOG_MS * 1000 };
	struct rlink *rl = calloc(1, sizeof(*rl));

	if (!rl) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rl->base = base;
	rl->cfg = cfg;
	rl->channel = channel;
	rl->scripts = scripts;
	rl->n_scripts = n;
	rl->watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_cb, rl);
	rl->defer_ev = event_new(base, -1, 0, defer_cb, rl);
	if (!rl->watchdog_ev || !rl->defer_ev ||
	    conn_init(rl, &rl->cmd, "cmd", 0) < 0 ||
	    conn_init(rl, &rl->sub, "sub", 1) < 0 ||
	    event_add(rl->watchdog_ev, &tv) < 0) {
		snprintf(err, errlen, "cannot set up the redis link: out of memory");
		rlink_free(rl);
		return NULL;
	}
	conn_connect(&rl->cmd);
	conn_connect(&rl->sub);
	return rl;
}

static void conn_close(struct rlink_conn *conn)
{
	redisAsyncContext *ac = conn->ac;

	conn->ac = NULL;
	if (ac)
		redisAsyncFree(ac); /* pending replies come back NULL: ops end */
	if (conn->retry_ev)
		event_free(conn->retry_ev);
	conn->retry_ev = NULL;
}

void rlink_free(struct rlink *rl)
{
	if (!rl)
		return;
	rl->closing = 1;
	conn_close(&rl->cmd);
	conn_close(&rl->sub);
	while (rl->ops_head)
		op_end(rl->ops_head, RLINK_CANCELLED, NULL);
	if (rl->watchdog_ev)
		event_free(rl->watchdog_ev);
	if (rl->defer_ev)
		event_free(rl->defer_ev);
	free(rl);
}

int rlink_is_ready(const struct rlink *rl)
{
	return rl->cmd.state == CONN_READY;
}

void rlink_subscribe(struct rlink *rl, rlink_message_cb *cb, void *arg)
{
	rl->message_cb = cb;
	rl->message_arg = arg;
}
