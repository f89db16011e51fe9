/*
 * store_hooks: the webhooks, company settings and their change feed in
 * Redis (a domain store on the store's Redis link; store.h has the calling
 * convention).
 *
 * Keys (store.h: every key under the hash tag {pw}):
 *   {pw}:webhooks                 HASH  webhook id -> stored JSON document
 *                                     (webhook_to_storage: times in Unix ms,
 *                                     the secret, a per-webhook "revision")
 *   {pw}:company:<companyId>:webhooks
 *                               SET   the ids of that company's webhooks
 *   {pw}:settings                 HASH  company id -> settings JSON
 *                                     (company_settings_to_json)
 *   {pw}:version                  STRING a counter bumped (INCR) by every
 *                                     write of the two hashes above
 *   channel pw:changes:<db>     pub/sub, after every write (channels are
 *                                     not per database, hence the db
 *                                     number), the change itself:
 *                                     "<version> webhook <id> put <document>"
 *                                     (created, replaced or disabled: the
 *                                     stored document), "<version> webhook
 *                                     <id> del" (deleted), "<version>
 *                                     settings <companyId> put <settings>"
 *
 * Every write is one Lua script that changes the data, INCRs {pw}:version and
 * PUBLISHes, so a reader that saw version V has seen every change up to V,
 * and a reader that misses a message still finds the version moved. A
 * reader at version V that receives the message of version V + 1 holds
 * version V + 1 once it applied that one change (registry.c). The
 * failure rule's disable (store_outcomes.h) is such a write too.
 */
#ifndef PROMO_WEBHOOKS_STORE_HOOKS_H
#define PROMO_WEBHOOKS_STORE_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/store.h"
#include "promo_webhooks/webhook.h"

/* The settings of one company, as loaded in a snapshot. */
struct store_company {
	char *company_id;
	struct company_settings settings;
};

/* Everything the registry caches, read atomically with the version. */
struct store_snapshot {
	int64_t version;                /* {pw}:version when read (0 if unset) */
	struct webhook *hooks;          /* every readable stored webhook */
	size_t n_hooks;
	struct store_company *companies; /* every company with settings */
	size_t n_companies;
};

void store_snapshot_free(struct store_snapshot *snap);

/* Operation callbacks. wh, hooks and s are valid during the call only. */
typedef void store_webhook_cb(void *arg, enum store_status status,
			      const struct webhook *wh);
/* hooks sorted by createdAt, then id. */
typedef void store_list_cb(void *arg, enum store_status status,
			   const struct webhook *hooks, size_t n);
/* s: the stored settings, or the defaults when the company has none. */
typedef void store_settings_cb(void *arg, enum store_status status,
			       const struct company_settings *s);
typedef void store_version_cb(void *arg, enum store_status status,
			      int64_t version);
/* Takes ownership of snap (free it with store_snapshot_free); NULL unless
 * STORE_OK. */
typedef void store_snapshot_cb(void *arg, enum store_status status,
			       struct store_snapshot *snap);

enum store_change_kind {
	STORE_CHANGE_RESYNC,   /* the subscription (re)started: messages may
				* have been missed, compare versions */
	STORE_CHANGE_WEBHOOK,  /* id is a webhook id */
	STORE_CHANGE_SETTINGS, /* id is a company id */
};

enum store_change_op {
	STORE_CHANGE_UNKNOWN, /* the message does not say (an older replica's):
			       * read everything again */
	STORE_CHANGE_PUT,     /* id now reads doc */
	STORE_CHANGE_REMOVE,  /* id is gone */
};

struct store_change {
	enum store_change_kind kind;
	int64_t version; /* {pw}:version after that change (0 for RESYNC) */
	const char *id;  /* NULL for RESYNC */
	enum store_change_op op;
	const char *doc; /* PUT: the stored document (webhook_from_storage,
			  * company_settings_from_json), doc_len bytes, not
			  * NUL-terminated */
	size_t doc_len;
};

/* change, its id and doc are valid during the call only. */
typedef void store_change_cb(void *arg, const struct store_change *change);

/*
 * Delivers every change published by any replica (the store's second,
 * subscriber connection), and a RESYNC each time the subscription starts
 * or restarts. One subscriber per store; cb NULL stops delivery.
 */
void store_subscribe(struct store *st, store_change_cb *cb, void *arg);

/* Stores a new webhook (wh->revision is ignored: it becomes 1). */
int store_webhook_create(struct store *st, const struct webhook *wh,
			 store_write_cb *cb, void *arg);
/* The webhook id of company_id; STORE_NOT_FOUND for another company's. */
int store_webhook_get(struct store *st, const char *company_id,
		      const char *id, store_webhook_cb *cb, void *arg);
int store_webhook_list(struct store *st, const char *company_id,
		       store_list_cb *cb, void *arg);
/*
 * Compare-and-set: replaces webhook wh->id of wh->company_id only if its
 * stored revision is still wh->revision (the revision it was read at), and
 * stores it with revision + 1. STORE_CONFLICT when it changed meanwhile
 * (the failure rule may have disabled it: re-read and re-apply).
 * clear_failures deletes {pw}:failures:<id> in the same step (re-enabling).
 */
int store_webhook_replace(struct store *st, const struct webhook *wh,
			  int clear_failures, store_write_cb *cb, void *arg);
int store_webhook_delete(struct store *st, const char *company_id,
			 const char *id, store_write_cb *cb, void *arg);

int store_settings_get(struct store *st, const char *company_id,
		       store_settings_cb *cb, void *arg);
int store_settings_put(struct store *st, const char *company_id,
		       const struct company_settings *s, store_write_cb *cb,
		       void *arg);

/* Every webhook and every company's settings, with the version they are at. */
int store_load_all(struct store *st, store_snapshot_cb *cb, void *arg);
/* The current {pw}:version (cheap: the registry polls it). */
int store_version_get(struct store *st, store_version_cb *cb, void *arg);

#endif
