/*
 * redact: takes the user info out of the URLs in a text before it is shown.
 * Pure; the one place a target's credentials are removed: new targets
 * cannot carry user info (webhook.c refuses it), but one stored earlier
 * can, and it must never reach a response, a notice, a log line or a
 * metric.
 */
#ifndef PROMO_WEBHOOKS_REDACT_H
#define PROMO_WEBHOOKS_REDACT_H

#include <stddef.h>

#include "promo_webhooks/buf.h"

/* What replaces the user info of a URL shown anywhere. */
#define REDACTED "***"

/*
 * Appends s (n bytes, any text: a target, a notice, an error message) to
 * out with the user info of every URL in it ("https://user:pw@host/...")
 * replaced by REDACTED. Returns 0, or -1 when out is full.
 */
int redact_userinfo(const char *s, size_t n, struct buf *out);

#endif
