/*
 * Unit tests of sign: message ids, secret form and Standard Webhooks
 * signatures. Every expected value was computed outside this code, with
 * Python's hashlib/hmac/base64 and checked with
 * `openssl dgst -sha256 -mac HMAC -macopt hexkey:...`; the first signature
 * vector is the Standard Webhooks specification's own example.
 */
#include "promo_webhooks/sign.h"
#include "testutil.h"

static void test_message_id(void)
{
	char id[SIGN_MESSAGE_ID_LEN], again[SIGN_MESSAGE_ID_LEN];

	/* sha256("/promo\0evt-1\0<webhook>\0")[:16], hex */
	sign_message_id("/promo", "evt-1", "00112233445566778899aabbccddeeff", "",
			id);
	CHECK_STR(id, "msg_22fd7862ae0daebde2114f2c4127a294");
	CHECK_INT(strlen(id), SIGN_MESSAGE_ID_LEN - 1);

	sign_message_id("/promo", "evt-1", "00112233445566778899aabbccddeeff",
			"start:1796108400000", id);
	CHECK_STR(id, "msg_a8c0792abf7b98b9a365f9c5f3bfff80");

	sign_message_id("", "", "", "", id);
	CHECK_STR(id, "msg_709e80c88487a2411e1ee4dfb9f22a86");

	/* Deterministic, and the separators keep the parts apart. */
	sign_message_id("a", "bc", "w", "", id);
	sign_message_id("a", "bc", "w", "", again);
	CHECK_STR(id, again);
	sign_message_id("ab", "c", "w", "", again);
	CHECK(strcmp(id, again) != 0);
	sign_message_id("a", "bc", "w", "x", again);
	CHECK(strcmp(id, again) != 0);
}

static void test_secret_decode(void)
{
	static const char *const bad[] = {
		NULL,
		"",
		"whsec_",
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",             /* no prefix */
		"WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",       /* prefix case */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRY=",       /* 23 bytes */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygp"
		"KissLS4vMDEyMzQ1Njc4OTo7PD0+P0A=",             /* 65 bytes */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA",     /* no padding */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA=",    /* short padding */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGB==",   /* pad bits set */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBl=",   /* pad bits set */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXG===",   /* three pads */
		"whsec_AAECAwQFBgcICQoLDA0O=xAREhMUFRYXGBk=",   /* '=' inside */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX ",      /* space */
		" whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\n",
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMU FRYX",
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRY_",       /* base64url */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRY-",
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRY\xc3\xa9",
	};
	unsigned char key[64];
	size_t keylen, i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		keylen = 99;
		CHECK_INT(sign_secret_decode(bad[i], key, &keylen), -1);
		if (sign_secret_decode(bad[i], NULL, NULL) != -1)
			fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
	}

	CHECK_INT(sign_secret_decode("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX", key,
				     &keylen), 0);
	CHECK_INT(keylen, 24);
	for (i = 0; i < 24; i++)
		CHECK_INT(key[i], i);
	CHECK_INT(sign_secret_decode("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA==",
				     key, &keylen), 0);
	CHECK_INT(keylen, 25);
	CHECK_INT(key[24], 24);
	CHECK_INT(sign_secret_decode("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk=",
				     key, &keylen), 0);
	CHECK_INT(keylen, 26);
	CHECK_INT(key[25], 25);
	CHECK_INT(sign_secret_decode(
			  "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm"
			  "JygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
			  key, &keylen), 0);
	CHECK_INT(keylen, 64);
	CHECK_INT(key[63], 63);
	CHECK_INT(sign_secret_decode("whsec_////////////////////////////////",
				     NULL, NULL), 0);
}

static void test_signature(void)
{
	static const char body1[] = "{\"test\": 2432232314}";
	static const char body2[] =
		"{\"id\":\"msg_0123456789abcdef0123456789abcdef\",\"data\":{}}";
	char sig[SIGN_SIGNATURE_LEN];

	CHECK_INT(sign_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
				 "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body1,
				 sizeof(body1) - 1, sig), 0);
	CHECK_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	CHECK_INT(strlen(sig), SIGN_SIGNATURE_LEN - 1);

	CHECK_INT(sign_signature(
			  "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm"
			  "JygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
			  "msg_0123456789abcdef0123456789abcdef", 1795854938, body2,
			  sizeof(body2) - 1, sig), 0);
	CHECK_STR(sig, "v1,OCZTNFffPkshqBW3D1LnRuMODB9QU5aJpCjqNwIPbpU=");

	/* An empty body; the body pointer is not read. */
	CHECK_INT(sign_signature("whsec_////////////////////////////////", "m", 0,
				 NULL, 0, sig), 0);
	CHECK_STR(sig, "v1,p706tyPgfAkbhRSjW70hhp6Y7D1IBlt8Hfa1/cLfBhM=");

	/* Only body_len bytes count. */
	CHECK_INT(sign_signature("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA==",
				 "msg_x", -5, "bodyXXXX", 4, sig), 0);
	CHECK_STR(sig, "v1,ZJ/4f+cOfVJIjlc4o92HYuE7utUC1M4u+6ZlfwxiOnY=");

	CHECK_INT(sign_signature("whsec_short", "m", 0, "", 0, sig), -1);
	CHECK_STR(sig, "");
	CHECK_INT(sign_signature(NULL, "m", 0, "", 0, sig), -1);
	CHECK_INT(sign_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", NULL, 0,
				 "", 0, sig), -1);
}

int main(void)
{
	test_message_id();
	test_secret_decode();
	test_signature();
	return TEST_DONE();
}
