/*
 * sign: message ids and Standard Webhooks signatures; the only module that
 * includes OpenSSL. Pure.
 */
#ifndef PROMO_WEBHOOKS_SIGN_H
#define PROMO_WEBHOOKS_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* "msg_" + 32 hex characters + NUL */
#define SIGN_MESSAGE_ID_LEN 37
/* "v1," + base64 of 32 bytes + NUL */
#define SIGN_SIGNATURE_LEN 48

/*
 * The webhook-id of one (event, webhook) pair: "msg_" + the first 128 bits
 * of SHA-256(source NUL event_id NUL webhook_id NUL extra), hex. The same
 * inputs always give the same id, so a redelivery after a crash carries the
 * same id. extra distinguishes derived occurrences (may be "").
 */
void sign_message_id(const char *source, const char *event_id,
		     const char *webhook_id, const char *extra,
		     char out[SIGN_MESSAGE_ID_LEN]);

/*
 * Checks a secret's form ("whsec_" + base64 of 24 to 64 bytes). Returns 0
 * and, when key is not NULL, writes the decoded key (up to 64 bytes) and its
 * length; -1 when the form is wrong.
 */
int sign_secret_decode(const char *secret, unsigned char *key, size_t *keylen);

/*
 * webhook-signature: "v1," + base64(HMAC-SHA256(key, msg_id "." timestamp
 * "." body)). Returns 0, or -1 when the secret is malformed.
 */
int sign_signature(const char *secret, const char *msg_id, int64_t timestamp,
		   const char *body, size_t body_len,
		   char out[SIGN_SIGNATURE_LEN]);

#endif
