/*
 * match: which webhooks an event goes to (pipeline stage 3, pure).
 * An index over a set of webhooks by (company id, event type) that keeps
 * only enabled webhooks; built once per registry snapshot, then read-only.
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

/*
 * The enabled webhooks of company_id subscribed to type, in a stable order
 * (by webhook id). Returns how many; *out points into the index (valid until
 * it is freed) and is NULL when there are none.
 */
size_t match_find(const struct match_index *mi, const char *company_id,
		  enum event_type type, const struct webhook *const **out);

#endif
