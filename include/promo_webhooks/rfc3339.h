/*
 * rfc3339: RFC 3339 date-times to and from Unix milliseconds (pure).
 */
#ifndef PROMO_WEBHOOKS_RFC3339_H
#define PROMO_WEBHOOKS_RFC3339_H

#include <stddef.h>
#include <stdint.h>

/* Parses an RFC 3339 date-time (len bytes) into Unix milliseconds. */
int rfc3339_parse(const char *s, size_t len, int64_t *ms);
/* Formats Unix milliseconds as RFC 3339 UTC with milliseconds
 * ("2026-11-28T08:35:38.123Z"); out needs 25 bytes. */
void rfc3339_format(int64_t ms, char *out, size_t outlen);

#endif
