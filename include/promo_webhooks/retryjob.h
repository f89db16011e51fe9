/*
 * retryjob: the retry job kept in Redis between attempts (pure). It holds
 * everything needed to render the same delivery again later, on any
 * replica: the webhook, the message id (so webhook-id stays the same), the
 * event's fields and its data, and the number of the next attempt. The
 * webhook's target, secret and payload type are looked up again when the
 * retry runs, so a retry follows the webhook's current configuration.
 *
 * Encoded as a JSON object; `data` is carried as a JSON string holding the
 * data object's text, so it comes back byte for byte. This module is the
 * only writer of that record.
 *
 * A period occurrence claimed by the scheduler's pass (period_claim.lua) is
 * queued as a retry whose record is the occurrence's plain fields instead:
 * {"webhookId","companyId","promotionId","date":"start"|"end","at":"<S ms>",
 * "occurredAt","event","period","periodValue","data"}. retry_job_decode
 * turns it into the job of its first attempt: eventId
 * "<promotionId>:<date>:<S>", and the message id sign_message_id(
 * RETRY_JOB_PERIOD_SOURCE, eventId, webhookId, ""), the same every time.
 */
#ifndef PROMO_WEBHOOKS_RETRYJOB_H
#define PROMO_WEBHOOKS_RETRYJOB_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/webhook.h"

/* The source a period occurrence's message id is derived from. */
#define RETRY_JOB_PERIOD_SOURCE "urn:promo-webhooks:period"

struct retry_job {
	char *webhook_id;
	char *message_id;        /* the webhook-id header value */
	char *event_id;          /* for the attempt log */
	enum event_type type;
	char *company_id;
	char *occurred_at;       /* RFC 3339 */
	char *data;              /* the data object's JSON text */
	size_t data_len;
	enum period_unit period; /* derived events: the webhook's period */
	int64_t period_value;
	int attempt;             /* the number of the attempt this job makes */
};

/* Appends the encoded job. Returns 0 or -1 (out is full). */
int retry_job_encode(const struct retry_job *job, struct buf *out);
/* Decodes a job, or a period occurrence (above), into owned strings
 * (release with retry_job_release). Returns 0, or -1 with a reason in err
 * when the text is neither. */
int retry_job_decode(struct retry_job *job, const char *text, size_t len,
		     char *err, size_t errlen);
void retry_job_release(struct retry_job *job);

#endif
