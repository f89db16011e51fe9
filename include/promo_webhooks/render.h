/*
 * render: the body POSTed to a webhook (pipeline stage 4, pure), contract
 * section 4. The same renderer serves real deliveries and sample payloads.
 */
#ifndef PROMO_WEBHOOKS_RENDER_H
#define PROMO_WEBHOOKS_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/webhook.h"

struct render_input {
	const char *message_id;  /* the webhook-id header value */
	enum event_type event;
	const char *company_id;
	const char *webhook_id;
	const char *occurred_at; /* RFC 3339 event time */
	const char *data;        /* a JSON object */
	size_t data_len;
	/* For derived period events: added to data as notificationPeriod and
	 * notificationPeriodValue (replacing members of those names).
	 * PERIOD_NONE adds nothing. */
	enum period_unit period;
	int64_t period_value;
};

/* Appends the JSON body. Returns 0, or -1 when data is not a JSON object or
 * out is full. */
int render_json(const struct render_input *in, struct buf *out);

#endif
