/*
 * rlink: the Redis link, the transport under the store modules and the only
 * module that includes hiredis. It owns two connections on the service's
 * libevent loop (hiredis 0.14.1 async), "cmd" for commands and "sub" for
 * one pub/sub subscription; the connect and command watchdog and the
 * reconnection with backoff (hiredis 0.14 async has neither); the queue of
 * commands waiting for a connection; and the Lua scripts (SCRIPT LOAD at
 * every connect, EVALSHA, EVAL after a NOSCRIPT). It knows nothing of
 * webhooks or promotions: a command is a list of arguments, an answer a
 * reply, and each command carries its own completion callback and argument,
 * as hiredis' own do.
 *
 * Calling convention: rlink_start returns 0 when the command was started,
 * and then its callback runs exactly once, later, from the event loop
 * (never from inside rlink_start); -1 (out of memory, or the arguments over
 * the cap) means it was not started and the callback never runs. While
 * Redis is unreachable, commands wait for the connection for a few seconds
 * and then end RLINK_UNAVAILABLE; once a reconnect attempt has failed they
 * end so at once (callers should not stall behind a dead Redis).
 */
#ifndef PROMO_WEBHOOKS_RLINK_H
#define PROMO_WEBHOOKS_RLINK_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/config.h"

struct event_base;
struct rlink;
struct rlink_cmd;
/* A Redis reply, seen through the accessors below; valid only during the
 * callback that receives it. */
struct rlink_reply;

/* A Lua script; the embedded ones are generated from service/lua/ at build
 * time (lua_scripts.h). */
struct rlink_script {
	const char *name; /* the file name without .lua, for logs */
	const char *src;  /* the source, byte for byte */
	size_t len;
	const char *sha;  /* SHA-1 of src in hex: its EVALSHA name */
};

enum rlink_status {
	RLINK_OK = 0,      /* reply holds Redis' answer (never an error reply) */
	RLINK_UNAVAILABLE, /* no answer: unreachable, too slow, or Redis refused
			    * the command (logged); reply is NULL */
	RLINK_CANCELLED,   /* rlink_cancel or rlink_free: the callback must
			    * only release what it holds; reply is NULL */
};

typedef void rlink_done_cb(void *arg, enum rlink_status status,
			   const struct rlink_reply *reply);

/* A message on the subscribed channel; msg NULL when the subscription
 * (re)started, so messages may have been missed. */
typedef void rlink_message_cb(void *arg, const char *msg, size_t len);

/*
 * Creates the link and starts connecting both connections to cfg's Redis
 * (AUTH user password, or AUTH password, then SELECT db); the subscriber
 * subscribes to channel; the command connection loads every script of
 * scripts[0..n). Redis being down is not an error here: the link keeps
 * reconnecting and rlink_is_ready() says when it answers. Returns NULL with
 * err set only when out of memory or the event loop refuses. cfg and
 * scripts must outlive the link.
 */
struct rlink *rlink_new(struct event_base *base, const struct config *cfg,
			const char *channel,
			const struct rlink_script *const *scripts, size_t n,
			char *err, size_t errlen);
/* Closes the connections; every pending command ends RLINK_CANCELLED. Must
 * not be called from inside an rlink callback. */
void rlink_free(struct rlink *rl);

/* 1 while the command connection is up and past its handshake. */
int rlink_is_ready(const struct rlink *rl);

/* Messages of the channel go to cb (NULL stops them). */
void rlink_subscribe(struct rlink *rl, rlink_message_cb *cb, void *arg);

/* Commands started with this owner end RLINK_CANCELLED (they still run). */
void rlink_cancel(struct rlink *rl, const void *owner);

/*
 * Building a command: a plain command (script NULL) takes its name and
 * arguments with rlink_cmd_arg; a script takes its keys with rlink_cmd_key
 * (every key it touches: they are its KEYS) and then its arguments (ARGV).
 * Errors (out of memory, more than the cap of 4 MiB of arguments, a key
 * after an argument) are remembered and make rlink_start return -1.
 * name is for logs and must outlive the command.
 */
struct rlink_cmd *rlink_cmd_new(const char *name,
				const struct rlink_script *script);
void rlink_cmd_free(struct rlink_cmd *cmd);
const char *rlink_cmd_name(const struct rlink_cmd *cmd);
void rlink_cmd_arg(struct rlink_cmd *cmd, const char *p, size_t len);
void rlink_cmd_args(struct rlink_cmd *cmd, const char *s);
void rlink_cmd_argnum(struct rlink_cmd *cmd, int64_t v);
/* A key: the concatenation of the given parts (NULL ends the list). For a
 * plain command it is an argument like any other. */
void rlink_cmd_key(struct rlink_cmd *cmd, const char *part, ...);
/* Marks cmd as failed (e.g. an argument could not be built). */
void rlink_cmd_fail(struct rlink_cmd *cmd);

/*
 * Starts cmd (taking ownership of it in every case). done(arg, ...) runs
 * once when it ends; owner is what rlink_cancel matches (may be NULL).
 */
int rlink_start(struct rlink *rl, struct rlink_cmd *cmd, rlink_done_cb *done,
		void *arg, const void *owner);
/* Sends cmd without waiting for a connection and without a callback (its
 * error, if any, is logged). Takes ownership of cmd. Returns -1 when the
 * connection is not ready or cmd could not be sent. */
int rlink_send(struct rlink *rl, struct rlink_cmd *cmd);

/* ---- replies ---- */
enum rlink_type {
	RLINK_NIL,
	RLINK_STRING,  /* bulk string or status */
	RLINK_INTEGER,
	RLINK_ARRAY,
	RLINK_OTHER,
};

enum rlink_type rlink_reply_type(const struct rlink_reply *r);
/* A string's bytes (NUL-terminated) and length; NULL for other types. */
const char *rlink_reply_str(const struct rlink_reply *r, size_t *len);
/* 1 when r is the string s. */
int rlink_reply_is(const struct rlink_reply *r, const char *s);
/* An integer, a decimal string, or nil (0). Returns 0 or -1. */
int rlink_reply_int64(const struct rlink_reply *r, int64_t *out);
/* Elements of an array (0 for other types). */
size_t rlink_reply_count(const struct rlink_reply *r);
const struct rlink_reply *rlink_reply_at(const struct rlink_reply *r, size_t i);

#endif
