/*
 * match: which webhooks an event goes to (pipeline stage 3, pure).
 * An index over a set of webhooks by (company id, event type) that keeps
 * only enabled webhooks; built from a registry snapshot, then kept current
 * one webhook at a time (match_index_add, match_index_remove), each in time
 * proportional to its own key's webhooks, not to all of them.
 */
#ifndef PROMO_WEBHOOKS_MATCH_H
#define PROMO_WEBHOOKS_MATCH_H

#include <stddef.h>

#include "promo_webhooks/event.h"
#include "promo_webhooks/webhook.h"

struct match_index;

/* Builds an index over hooks[0..n). The webhooks are not copied: they must
 * outlive the index. Returns NULL when out of memory. */
struct match_index *match_index_build(const struct webhook *const *hooks,
				      size_t n);
void match_index_free(struct match_index *mi);

/* Adds wh (not copied: it must outlive the index or be removed first), or
 * replaces the webhook of the same id under wh's (company, type); nothing
 * when wh is disabled or malformed. 0, or -1 when out of memory (the index
 * is unchanged then). */
int match_index_add(struct match_index *mi, const struct webhook *wh);
/* Removes the webhook with wh's id from wh's (company, type), if there:
 * pass the webhook as it was added. */
void match_index_remove(struct match_index *mi, const struct webhook *wh);

/*
 * The enabled webhooks of company_id subscribed to type, in a stable order
 * (by webhook id). Returns how many; *out points into the index (valid until
 * it is freed or changed) and is NULL when there are none.
 */
size_t match_find(const struct match_index *mi, const char *company_id,
		  enum event_type type, const struct webhook *const **out);

#endif
