/*
 * redact: user info out of the URLs in a text. See
 * include/promo_webhooks/redact.h.
 */
#include "promo_webhooks/redact.h"

#include <string.h>

/* 1 for a byte that ends a URL's authority in running text. */
static int ends_authority(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f || strchr("/?#\"'\\<>`", c);
}

int redact_userinfo(const char *s, size_t n, struct buf *out)
{
	const char *p = s, *end = s + n;

	while (p < end) {
		const char *sep = NULL, *q, *at = NULL;

		for (q = p; q + 3 <= end; q++) {
			if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
				sep = q;
				break;
			}
		}
		if (!sep)
			break;
		q = sep + 3;
		while (q < end && !ends_authority((unsigned char)*q)) {
			if (*q == '@')
				at = q;
			q++;
		}
		buf_add(out, p, (size_t)(sep + 3 - p));
		if (at) {
			buf_adds(out, REDACTED);
			p = at;
		} else {
			p = sep + 3;
		}
	}
	return buf_add(out, p, (size_t)(end - p));
}
