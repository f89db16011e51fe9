/*
 * sign: the webhook-id of a delivery and its Standard Webhooks signature
 * (contract section 4). The only module that includes OpenSSL; pure.
 */
#include "promo_webhooks/sign.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define SECRET_PREFIX "whsec_"
#define SECRET_PREFIX_LEN (sizeof(SECRET_PREFIX) - 1)
#define KEY_MIN 24
#define KEY_MAX 64
/* base64 of KEY_MAX bytes, padded */
#define KEY_B64_MAX (((KEY_MAX + 2) / 3) * 4)

/*
 * The algorithms, fetched from OpenSSL's provider once: a fetch by name on
 * every call (what EVP_sha256() in EVP_DigestInit_ex and EVP_MAC_fetch per
 * signature do) was a third of the CPU of a webhook-id. They are kept for
 * the life of the process; the service signs on its loop thread only.
 */
static EVP_MD *sha256_md(void)
{
	static EVP_MD *md;

	if (!md)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	return md;
}

static EVP_MAC *hmac_mac(void)
{
	static EVP_MAC *mac;

	if (!mac)
		mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	return mac;
}

void sign_message_id(const char *source, const char *event_id,
		     const char *webhook_id, const char *extra,
		     char out[SIGN_MESSAGE_ID_LEN])
{
	static const char hex[] = "0123456789abcdef";
	const char *parts[] = { source, event_id, webhook_id, extra };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static EVP_MD_CTX *ctx; /* reused: EVP_DigestInit_ex2 resets it */
	const EVP_MD *sha256 = sha256_md();
	size_t i;
	int ok;

	if (!ctx)
		ctx = EVP_MD_CTX_new();
	ok = ctx && sha256 && EVP_DigestInit_ex2(ctx, sha256, NULL) == 1;
	for (i = 0; ok && i < sizeof(parts) / sizeof(parts[0]); i++) {
		const char *p = parts[i] ? parts[i] : "";

		/* NUL separators keep ("ab", "c") and ("a", "bc") apart. */
		if (i > 0)
			ok = EVP_DigestUpdate(ctx, "", 1) == 1;
		if (ok)
			ok = EVP_DigestUpdate(ctx, p, strlen(p)) == 1;
	}
	if (ok)
		ok = EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 16;
	if (!ok) {
		/* Only an allocation failure inside OpenSSL gets here; an
		 * empty id is recognisable, a made-up one would not be. */
		out[0] = '\0';
		return;
	}
	memcpy(out, "msg_", 4);
	for (i = 0; i < 16; i++) {
		out[4 + 2 * i] = hex[md[i] >> 4];
		out[4 + 2 * i + 1] = hex[md[i] & 15];
	}
	out[SIGN_MESSAGE_ID_LEN - 1] = '\0';
}

static int is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* The value of a base64 character (is_b64 must hold). */
static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : 63;
}

/*
 * Strict base64 (RFC 4648 section 4, padded): EVP_DecodeBlock alone would
 * skip surrounding whitespace, accept non-zero pad bits and count padding
 * as decoded zero bytes, so the form is checked here first.
 */
int sign_secret_decode(const char *secret, unsigned char *key, size_t *keylen)
{
	unsigned char tmp[KEY_B64_MAX / 4 * 3];
	const char *b64;
	size_t len, i, pad = 0, n;
	int dec;

	if (!secret || strncmp(secret, SECRET_PREFIX, SECRET_PREFIX_LEN) != 0)
		return -1;
	b64 = secret + SECRET_PREFIX_LEN;
	len = strlen(b64);
	if (len == 0 || len % 4 != 0 || len > KEY_B64_MAX)
		return -1;
	if (b64[len - 1] == '=')
		pad = b64[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++) {
		if (!is_b64(b64[i]))
			return -1;
	}
	/* The bits below the last character's share must be zero, so that
	 * each key has exactly one spelling. */
	if (pad == 1 && (b64_value(b64[len - 2]) & 0x3) != 0)
		return -1;
	if (pad == 2 && (b64_value(b64[len - 3]) & 0xf) != 0)
		return -1;
	n = len / 4 * 3 - pad;
	if (n < KEY_MIN || n > KEY_MAX)
		return -1;
	dec = EVP_DecodeBlock(tmp, (const unsigned char *)b64, (int)len);
	if (dec < 0 || (size_t)dec != len / 4 * 3)
		return -1;
	if (key)
		memcpy(key, tmp, n);
	if (keylen)
		*keylen = n;
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return 0;
}

int sign_signature(const char *secret, const char *msg_id, int64_t timestamp,
		   const char *body, size_t body_len,
		   char out[SIGN_SIGNATURE_LEN])
{
	unsigned char key[KEY_MAX], mac[EVP_MAX_MD_SIZE];
	char ts[24];
	size_t keylen = 0, maclen = 0;
	EVP_MAC *hmac = hmac_mac();
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	char digest[] = "SHA256";
	int tslen, rc = -1;

	out[0] = '\0';
	if (sign_secret_decode(secret, key, &keylen) < 0 || !msg_id)
		return -1;
	tslen = snprintf(ts, sizeof(ts), "%" PRId64, timestamp);
	if (tslen < 0 || (size_t)tslen >= sizeof(ts))
		goto out;

	if (!hmac)
		goto out;
	ctx = EVP_MAC_CTX_new(hmac);
	if (!ctx)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, keylen, params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)msg_id,
			   strlen(msg_id)) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)".", 1) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tslen) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)".", 1) != 1 ||
	    (body_len &&
	     EVP_MAC_update(ctx, (const unsigned char *)body, body_len) != 1) ||
	    EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) != 1 || maclen != 32)
		goto out;

	memcpy(out, "v1,", 3);
	/* 32 bytes encode to 44 characters plus the NUL EVP_EncodeBlock
	 * writes: exactly the rest of out. */
	if (EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen) != 44) {
		out[0] = '\0';
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	EVP_MAC_CTX_free(ctx);
	return rc;
}
