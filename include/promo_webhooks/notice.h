/*
 * notice: the "webhook disabled" notice (contract section 5), pure. The
 * failure rule stores the notice's plain fields in the outbox (written by
 * notice_fields_encode, kept by webhook_disable.lua as given); the relay
 * renders the message, subject and text included, with notice_render
 * when it publishes it. So the notice's prose has one writer, in C.
 */
#ifndef PROMO_WEBHOOKS_NOTICE_H
#define PROMO_WEBHOOKS_NOTICE_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/buf.h"

/* What a notice is made of. */
struct notice_fields {
	const char *to;           /* the company's notification email */
	const char *company_id;
	const char *webhook_id;
	const char *event;        /* the webhook's event type name */
	const char *target;
	const char *disabled_at;  /* RFC 3339 */
	long count;               /* failures within the window */
	int64_t window_ms;
	long last_status;         /* the last failure: HTTP status, 0 = none */
	const char *last_error;   /* its error, NULL = none */
	/* The failures in the window, oldest first: each the failure rule's
	 * member, {"id","at","status","error"} (JSON text). */
	const char *const *failures;
	const size_t *failure_lens;
	size_t n_failures;
};

/* Appends the stored form: a JSON object of the fields above. Returns 0 or
 * -1 (out is full). */
int notice_fields_encode(const struct notice_fields *nf, struct buf *out);

/*
 * Appends the notice message for the email topic, from a stored form:
 * {"type":"WebhookDisabled","to","subject","text","companyId","webhookId",
 * "event","target","disabledAt","failures":[{"at","status","error"},...]}.
 * Returns 0, or -1 with a reason in err when stored is unreadable.
 */
int notice_render(const char *stored, size_t len, struct buf *out, char *err,
		  size_t errlen);

#endif
