/*
 * render: the body POSTed to a webhook (pipeline stage 4, pure), contract
 * section 4, JSON or XML. The same renderer (render_body) serves real
 * deliveries and sample payloads.
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

/*
 * The most containers data may nest, data itself counted ({"a":[1]} is 2).
 * render_xml refuses deeper data; event decode refuses it earlier (its own
 * limit is the same number), so every decoded event renders. The XML body
 * is then at most RENDER_MAX_DEPTH + 2 elements deep and the JSON body
 * RENDER_MAX_DEPTH + 1 levels: within the default limits of every common
 * parser (libxml2 256, System.Text.Json 64, serde_json 128).
 */
#define RENDER_MAX_DEPTH 32

/* Appends the JSON body. Returns 0, or -1 when data is not a JSON object or
 * out is full (out may then hold part of a body). data is copied as given
 * unless a period is merged into it. */
int render_json(const struct render_input *in, struct buf *out);

/*
 * Appends the XML body, always well-formed and namespace-well-formed
 * UTF-8 XML 1.0:
 *
 *   <?xml version="1.0" encoding="UTF-8"?>
 *   <WebhookEvent><Id>..</Id><Event>..</Event><CompanyId>..</CompanyId>
 *   <WebhookId>..</WebhookId><OccurredAt>..</OccurredAt><Data>..</Data>
 *   </WebhookEvent>
 *
 * on one line after the declaration, ending in a newline. Inside <Data>:
 * - a member becomes an element named after it, member order kept;
 * - an array becomes the repeated <Item> elements of its values;
 * - an object nests; null, {} and [] are an empty element;
 * - true, false and numbers are their JSON text (numbers as written, so
 *   1.50 and 1e400 stay as they are), strings their decoded value.
 * Names: every character that may not appear in an XML 1.0 (fifth edition)
 * name becomes '_', and so does ':' (a colon would read as a namespace
 * prefix); a name that could not start an XML name (empty, or starting
 * with a digit, '-', '.', or a combining mark) gets a '_' in front. So
 * "2fa" is <_2fa>, "a b:c" is <a_b_c>, "" is <_>, "größe" stays. Names
 * starting with "xml" are kept: the XML spec only reserves them, every
 * parser accepts them and a receiver expects e.g. <xmlUrl>. Two members may
 * map to the same name; XML allows repeated elements.
 * Text: markup is escaped (& < > " and CR as &#13;, so it round-trips);
 * invalid UTF-8 and every character XML 1.0 cannot carry (the C0 controls
 * but TAB, LF and CR; lone surrogates; U+FFFE, U+FFFF) become U+FFFD.
 * For period events notificationPeriod and notificationPeriodValue close
 * <Data>, replacing data's top-level members of those names.
 * Returns 0, or -1 when data is not a JSON object, nests deeper than
 * RENDER_MAX_DEPTH, or out is full (out may then hold part of a body).
 */
int render_xml(const struct render_input *in, struct buf *out);

/* The Content-Type of a payload type: "application/xml" for PAYLOAD_XML,
 * "application/json" otherwise. */
const char *render_content_type(enum payload_type type);

/*
 * The one entry point for real deliveries and sample payloads: renders the
 * body of payload type `type` (PAYLOAD_XML, PAYLOAD_JSON; PAYLOAD_DEFAULT
 * should have been resolved to the company setting by the caller and is
 * rendered as JSON). Sets *content_type (when content_type is not NULL) to
 * the header value to send. Returns what the renderer returned, or -1 for
 * a type out of range.
 */
int render_body(enum payload_type type, const struct render_input *in,
		struct buf *out, const char **content_type);

#endif
