/*
 * samples: realistic sample payloads for the admin API's "View Sample
 * Payload" (contract section 7), rendered by the same renderer as real
 * deliveries. Pure: no I/O.
 */
#ifndef PROMO_WEBHOOKS_SAMPLES_H
#define PROMO_WEBHOOKS_SAMPLES_H

#include <stdint.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/webhook.h"

/* The sample `data` object of an event type (compact JSON), NULL for an
 * out-of-range type. The derived period events share the promotion's. */
const char *samples_data(enum event_type t);

/* Placeholders used when a sample is not for a particular webhook. */
#define SAMPLES_COMPANY_ID "acme"
#define SAMPLES_WEBHOOK_ID "0f8fad5bd9cb469fa16570867728950e"

enum samples_result {
	SAMPLES_OK = 0,          /* out holds the body */
	SAMPLES_FAILED = -1,     /* rendering failed (out of memory, or a
				  * type or argument out of range) */
};

/*
 * Renders the body a webhook of company_id with id webhook_id would
 * receive for a sample event of type t, as payload type fmt (PAYLOAD_JSON
 * or PAYLOAD_XML; PAYLOAD_DEFAULT means Json). For the derived types,
 * period/period_value go into data (PERIOD_NONE: a 2 Hours example).
 */
enum samples_result samples_render(enum event_type t, const char *company_id,
				   const char *webhook_id,
				   enum period_unit period,
				   int64_t period_value,
				   enum payload_type fmt, struct buf *out);

/*
 * The same with a given message id (the body's "id") and event time: the
 * body of a test send (POST .../webhooks/{id}/test), which carries a fresh
 * message id so that receivers de-duplicating on webhook-id see each test.
 */
enum samples_result samples_render_message(enum event_type t,
					   const char *company_id,
					   const char *webhook_id,
					   enum period_unit period,
					   int64_t period_value,
					   enum payload_type fmt,
					   const char *message_id,
					   const char *occurred_at,
					   struct buf *out);

/* The Content-Type of a payload type ("application/json", ...), as
 * render_content_type. */
const char *samples_content_type(enum payload_type fmt);

#endif
