/*
 * fuzz_webhook_json: the admin API's request parsing (service/webhook.c):
 * webhook_apply_json in its three modes, company_settings_apply_json, and
 * the readers of the stored forms.
 *
 * Input: one control byte, then the body. The control byte modulo 6 picks:
 *   0 webhook_apply_json CREATE on a fresh webhook (id, company set)
 *   1 webhook_apply_json REPLACE on an existing webhook
 *   2 webhook_apply_json PATCH on an existing webhook
 *   3 company_settings_apply_json on existing settings
 *   4 webhook_from_storage
 *   5 company_settings_from_json
 *
 * Checks: a refused body leaves the value unchanged and says why (a code);
 * an accepted one leaves it with the invariants of webhook.h, and its
 * stored form reads back to the same stored form. The API view is strictly
 * valid JSON.
 */
#include "promo_webhooks/webhook.h"

#include "fuzz_util.h"

#define NOW INT64_C(1748856612345)

/* An existing webhook for REPLACE and PATCH: derived type, period, secret. */
static const char base_body[] =
	"{\"event\":\"Promotion.StartingInPeriod\","
	"\"target\":\"https://hooks.acme.example/promo\","
	"\"notificationPeriod\":\"Hours\",\"notificationPeriodValue\":2,"
	"\"payloadDataType\":\"Xml\","
	"\"secret\":\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static char *stored(const struct webhook *wh)
{
	struct buf b;

	buf_init(&b, 0);
	FUZZ_ASSERT(webhook_to_storage(wh, &b) == 0);
	return buf_detach(&b, NULL);
}

static char *settings_json(const struct company_settings *s)
{
	struct buf b;

	buf_init(&b, 0);
	FUZZ_ASSERT(company_settings_to_json(s, &b) == 0);
	return buf_detach(&b, NULL);
}

/* The invariants of a stored webhook (webhook.h), and a stable stored
 * form. from_api: wh passed the API's validation, which alone checks the
 * target's length and the secret's form (the stored form is trusted to
 * hold what the API let in). */
static void check_webhook(const struct webhook *wh, int from_api)
{
	struct webhook back;
	struct buf view;
	char *a, *b;

	FUZZ_ASSERT(wh->id && *wh->id && wh->company_id && *wh->company_id);
	FUZZ_ASSERT(wh->target && *wh->target);
	FUZZ_ASSERT(event_type_name(wh->event) != NULL);
	if (event_type_is_derived(wh->event))
		FUZZ_ASSERT(wh->period != PERIOD_NONE && wh->period_value >= 1);
	else
		FUZZ_ASSERT(wh->period == PERIOD_NONE && wh->period_value == 0);
	if (from_api) {
		FUZZ_ASSERT(strlen(wh->target) <= WEBHOOK_TARGET_MAX);
		FUZZ_ASSERT(webhook_id_valid(wh->id));
		FUZZ_ASSERT(!wh->secret || strncmp(wh->secret, "whsec_", 6) == 0);
	}
	FUZZ_ASSERT(!wh->enabled || wh->disabled_at_ms == 0);

	buf_init(&view, 0);
	FUZZ_ASSERT(webhook_to_json(wh, &view) == 0);
	FUZZ_ASSERT(fuzz_json_valid(view.data, view.len, 1, NULL));
	buf_release(&view);

	a = stored(wh);
	FUZZ_ASSERT(fuzz_json_valid(a, strlen(a), 1, NULL));
	webhook_init(&back);
	FUZZ_ASSERT(webhook_from_storage(&back, a, strlen(a)) == 0);
	b = stored(&back);
	if (!from_api) {
		/* A stored form read from arbitrary bytes may hold invalid
		 * UTF-8 that yajl lets through (overlong forms): written
		 * out, it becomes \ufffd, read back a raw U+FFFD, written
		 * again raw. One more round must then change nothing. */
		webhook_release(&back);
		webhook_init(&back);
		FUZZ_ASSERT(webhook_from_storage(&back, b, strlen(b)) == 0);
		free(a);
		a = b;
		b = stored(&back);
	}
	FUZZ_ASSERT(strcmp(a, b) == 0);
	webhook_release(&back);
	free(a);
	free(b);
}

/* Settings hold their invariants and a stable stored form; from_api as
 * for check_webhook. */
static void check_settings(const struct company_settings *s, int from_api)
{
	struct company_settings back;
	char *a, *b;

	FUZZ_ASSERT(s->payload_type == PAYLOAD_JSON || s->payload_type == PAYLOAD_XML);
	a = settings_json(s);
	FUZZ_ASSERT(fuzz_json_valid(a, strlen(a), 1, NULL));
	company_settings_init(&back);
	FUZZ_ASSERT(company_settings_from_json(&back, a, strlen(a)) == 0);
	b = settings_json(&back);
	if (!from_api) {
		company_settings_release(&back);
		company_settings_init(&back);
		FUZZ_ASSERT(company_settings_from_json(&back, b, strlen(b)) == 0);
		free(a);
		a = b;
		b = settings_json(&back);
	}
	FUZZ_ASSERT(strcmp(a, b) == 0);
	company_settings_release(&back);
	free(a);
	free(b);
}

static void fresh(struct webhook *wh)
{
	webhook_init(wh);
	wh->id = fuzz_dup("0123456789abcdef0123456789abcdef", 32);
	wh->company_id = fuzz_dup("acme", 4);
}

static void fuzz_apply(enum webhook_write mode, const char *body, size_t len)
{
	struct webhook wh;
	struct webhook_error err;
	char *before, *after;
	int reenabled = -1, rc;

	fresh(&wh);
	if (mode != WEBHOOK_CREATE) {
		FUZZ_ASSERT(webhook_apply_json(&wh, WEBHOOK_CREATE, base_body,
					       sizeof(base_body) - 1, NOW - 1,
					       NULL, &err) == 0);
		wh.revision = 3;
	}
	before = stored(&wh);
	memset(&err, 0, sizeof(err));
	rc = webhook_apply_json(&wh, mode, body, len, NOW, &reenabled, &err);
	after = stored(&wh);
	if (rc != 0) {
		FUZZ_ASSERT(rc == -1);
		FUZZ_ASSERT(err.code[0] != '\0');
		FUZZ_ASSERT(strcmp(before, after) == 0);
	} else {
		FUZZ_ASSERT(reenabled == 0 || reenabled == 1);
		FUZZ_ASSERT(wh.updated_at_ms == NOW);
		check_webhook(&wh, 1);
	}
	free(before);
	free(after);
	webhook_release(&wh);
}

static void fuzz_settings(const char *body, size_t len)
{
	struct company_settings s;
	struct webhook_error err;
	char *before, *after;
	int rc;

	company_settings_init(&s);
	s.notification_email = fuzz_dup("ops@acme.example", 16);
	s.payload_type = PAYLOAD_XML;
	before = settings_json(&s);
	memset(&err, 0, sizeof(err));
	rc = company_settings_apply_json(&s, body, len, &err);
	after = settings_json(&s);
	if (rc != 0) {
		FUZZ_ASSERT(rc == -1);
		FUZZ_ASSERT(err.code[0] != '\0');
		FUZZ_ASSERT(strcmp(before, after) == 0);
	} else {
		check_settings(&s, 1);
	}
	free(before);
	free(after);
	company_settings_release(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct webhook wh;
	struct company_settings s;
	char *body;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	body = fuzz_dup(data + 1, len);
	switch (data[0] % 6) {
	case 0:
		fuzz_apply(WEBHOOK_CREATE, body, len);
		break;
	case 1:
		fuzz_apply(WEBHOOK_REPLACE, body, len);
		break;
	case 2:
		fuzz_apply(WEBHOOK_PATCH, body, len);
		break;
	case 3:
		fuzz_settings(body, len);
		break;
	case 4:
		webhook_init(&wh);
		if (webhook_from_storage(&wh, body, len) == 0)
			check_webhook(&wh, 0);
		webhook_release(&wh);
		break;
	default:
		company_settings_init(&s);
		if (company_settings_from_json(&s, body, len) == 0)
			check_settings(&s, 0);
		company_settings_release(&s);
		break;
	}
	free(body);
	return 0;
}
