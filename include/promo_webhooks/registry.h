/*
 * registry: the in-memory cache of every webhook and every company's
 * settings, the view the pipeline matches events against. Loaded from the
 * store at start, then kept current with any change made through any
 * replica: the store's pub/sub feed carries each change, which is applied
 * in place when it is the next version (one webhook, in time that does not
 * grow with the number of webhooks); a full load is the fallback (a missed
 * message, an older replica's message) and the safety net (the version
 * counter polled every cfg->cache_refresh_ms: one below the cache's, a
 * wiped Redis, loads at once; one above that the feed has not brought
 * within 250 ms loads too), so a missed message, a reconnect or even a
 * wiped Redis is caught within one second.
 *
 * Every pointer handed out here is valid until the caller returns to the
 * event loop and no longer (a replaced webhook, or a whole replaced cache,
 * is freed on a later loop iteration): copy what must outlive the current
 * callback.
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
/* Full loads finished, and changes applied in place, since the start (for
 * promo_webhooks_registry_full_loads_total and
 * promo_webhooks_registry_changes_applied_total). */
uint64_t registry_full_loads(const struct registry *reg);
uint64_t registry_changes_applied(const struct registry *reg);

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

/* Called after every load and every change applied; one callback, cb NULL
 * clears it. */
void registry_set_change_cb(struct registry *reg, registry_change_cb *cb,
			    void *arg);
/* A write through this process reached `version`: the feed brings it, or
 * a full load follows within 250 ms. Cheap when already at or past it. */
void registry_note_version(struct registry *reg, int64_t version);

#endif
