/*
 * registry: the in-memory cache of every webhook and every company's
 * settings, the view the pipeline matches events against. Loaded from the
 * store at start, then kept current with any change made through any
 * replica: the store's pub/sub feed for promptness, and a poll of the
 * version counter every cfg->cache_refresh_ms as the safety net (a full
 * reload whenever the version differs from the one loaded, so a missed
 * message, a reconnect or even a wiped Redis is caught within one poll).
 *
 * Snapshots: the cache is an immutable snapshot (webhooks, their match
 * index, settings). A reload builds a new one and swaps it in; the old one
 * is freed on a later loop iteration. So every pointer handed out here is
 * valid until the caller returns to the event loop and no longer: copy what
 * must outlive the current callback.
 */
#ifndef PROMO_WEBHOOKS_REGISTRY_H
#define PROMO_WEBHOOKS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/config.h"
#include "promo_webhooks/match.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/webhook.h"

struct event_base;
struct registry;

/* A new snapshot is in place (after the first load and every reload). */
typedef void registry_change_cb(void *arg);

/*
 * Creates the registry and starts the first load (it waits for the store
 * to connect). Subscribes to the store's change feed (one registry per
 * store). store and cfg must outlive the registry. NULL with err set when
 * out of memory.
 */
struct registry *registry_new(struct event_base *base,
			      const struct config *cfg, struct store *store,
			      char *err, size_t errlen);
void registry_free(struct registry *reg);

/* 1 once the first load has finished; stays 1 (a stale cache is kept while
 * Redis is away). */
int registry_is_loaded(const struct registry *reg);
/* The {pw}:version the current snapshot was read at (0 before the first). */
int64_t registry_version(const struct registry *reg);
/* Webhooks in the current snapshot (enabled or not). */
size_t registry_count(const struct registry *reg);

/* The match index of the current snapshot; an empty one before the first
 * load. Never NULL. */
const struct match_index *registry_index(const struct registry *reg);
/* Every webhook of the snapshot, sorted by id. Returns how many. */
size_t registry_webhooks(const struct registry *reg,
			 const struct webhook *const **out);
/* The webhook with that id, or NULL. */
const struct webhook *registry_webhook(const struct registry *reg,
				       const char *id);
/* The settings of company_id, or the defaults (null email, Json). Never
 * NULL. */
const struct company_settings *registry_settings(const struct registry *reg,
						 const char *company_id);

/* Called after every swap; one callback, cb NULL clears it. */
void registry_set_change_cb(struct registry *reg, registry_change_cb *cb,
			    void *arg);
/* A write through this process reached `version`: reload now rather than
 * wait for the feed. Cheap when already at or past it. */
void registry_note_version(struct registry *reg, int64_t version);

#endif
