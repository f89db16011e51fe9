/*
 * store: the service's state in Redis, as three domain stores on one Redis
 * link (rlink.h, the transport):
 *   store_hooks.h     webhooks, company settings and their change feed
 *   store_outcomes.h  the failure rule, the attempt log, retries, the
 *                     notice outbox
 *   store_promos.h    promotions and the period scan
 * This header is what they share: the handle, the status codes, the
 * calling convention. Each domain store builds its own commands and parses
 * its own replies; its Lua scripts are files under service/lua/ (KEYS and
 * ARGV documented at the top of each), embedded at build time.
 *
 * Keys: every key is "{pw}:..." (README, "Redis keys"). The hash tag {pw}
 * puts every key in one hash slot, so each script call, which may touch
 * webhooks, retries and the outbox in one atomic step, touches one slot of
 * a Redis Cluster; and every key a script touches is passed in its KEYS.
 *
 * Calling convention: every operation returns 0 when it was started, and
 * then its callback runs exactly once, later, from the event loop (never
 * from inside the call); -1 (out of memory) means it was not started and
 * the callback never runs. Whatever a callback receives by pointer is valid
 * only during the callback: copy what must outlive it. While Redis is
 * unreachable, operations wait for the connection for a few seconds and
 * then fail with STORE_UNAVAILABLE; once a reconnect attempt has failed
 * they fail at once (callers should not stall behind a dead Redis).
 */
#ifndef PROMO_WEBHOOKS_STORE_H
#define PROMO_WEBHOOKS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/config.h"
#include "promo_webhooks/rlink.h"

struct event_base;
struct store;

/* The prefix of every key: the hash tag {pw} (one slot, see above). */
#define STORE_KEY(name) "{pw}:" name

enum store_status {
	STORE_OK = 0,      /* done */
	STORE_NOT_FOUND,   /* no such webhook, or not of the company named */
	STORE_CONFLICT,    /* create: the id exists; replace: the webhook was
			    * written since it was read (re-read and retry) */
	STORE_UNAVAILABLE, /* Redis unreachable, too slow, or refused the
			    * command (e.g. out of memory, read-only replica) */
	STORE_ERROR,       /* Redis answered something unexpected, refused
			    * the command for good (a script error), or
			    * stored data is unreadable: a bug or a foreign
			    * writer; trying again will not help */
};

const char *store_status_name(enum store_status status);

/* A write's answer. version: {pw}:version after the write for webhook and
 * settings writes; otherwise as the operation says (0 unless STORE_OK). */
typedef void store_write_cb(void *arg, enum store_status status,
			    int64_t version);

/*
 * Creates the store and starts connecting (host, port, user and password
 * -> AUTH, db -> SELECT from cfg). Redis being down is not an error here:
 * the store keeps reconnecting and store_is_ready() says when it answers.
 * Returns NULL with err set only when out of memory or the event loop
 * refuses. cfg must outlive the store.
 */
struct store *store_new(struct event_base *base, const struct config *cfg,
			char *err, size_t errlen);
/* Closes the connections. Pending operations are dropped without their
 * callbacks. Must not be called from inside a store callback. */
void store_free(struct store *st);

/* 1 while the command connection is up and past its handshake. */
int store_is_ready(const struct store *st);

/* Operations started with this arg will not call back (they still run).
 * For callers that go away while operations are in flight. */
void store_cancel(struct store *st, void *arg);

/* ---- for the domain stores (store_hooks.c, store_outcomes.c,
 * store_promos.c) only ---- */

struct rlink *store_link(struct store *st);
/* The change feed's channel, "pw:changes:<db>". */
const char *store_channel(const struct store *st);
/* The change feed's subscriber (store_hooks.c); arg is malloc'd and
 * becomes the store's, freed with the next call or store_free. */
void store_set_listener(struct store *st, rlink_message_cb *cb, void *arg);
/* STORE_UNAVAILABLE for RLINK_UNAVAILABLE, STORE_ERROR for RLINK_REJECTED
 * (RLINK_CANCELLED is never passed on). */
enum store_status store_status_from(enum rlink_status status);
/*
 * Starts cmd, whose script answers {"ok", n} / {"not_found"} /
 * {"conflict"}, and calls cb(arg, status, n) with the answer. Takes
 * ownership of cmd. Returns 0 or -1 as every operation.
 */
int store_start_write(struct store *st, struct rlink_cmd *cmd,
		      store_write_cb *cb, void *arg);
/* Starts cmd with done/ctx, and owner arg for store_cancel. */
int store_start(struct store *st, struct rlink_cmd *cmd, rlink_done_cb *done,
		void *ctx, void *arg);
/* Adds a built text b as cmd's next argument; a b that failed (over its
 * cap, out of memory) fails the command. */
void store_arg_buf(struct rlink_cmd *cmd, const struct buf *b);

#endif
