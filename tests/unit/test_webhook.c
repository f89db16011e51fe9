/*
 * Unit tests of webhook.c: request validation (contract section 7), the
 * API view, the stored form and company settings.
 */
#include "promo_webhooks/webhook.h"
#include "promo_webhooks/redact.h"
#include "testutil.h"

#include <string.h>

#define NOW 1748856612345LL /* 2025-06-02T09:30:12.345Z */
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static int apply(struct webhook *wh, enum webhook_write mode, const char *body,
		 int *reenabled, struct webhook_error *err)
{
	memset(err, 0, sizeof(*err));
	return webhook_apply_json(wh, mode, body, strlen(body), NOW, reenabled, err);
}

/* Applies a CREATE body that must fail; checks code and field. */
static void refused(const char *body, const char *code, const char *field)
{
	struct webhook wh;
	struct webhook_error err;
	int rc;

	webhook_init(&wh);
	rc = apply(&wh, WEBHOOK_CREATE, body, NULL, &err);
	CHECK_INT(rc, -1);
	CHECK_STR(err.code, code);
	CHECK_STR(err.field, field);
	if (rc == 0 || strcmp(err.field, field) != 0)
		fprintf(stderr, "  body: %s\n  message: %s\n", body, err.message);
	webhook_release(&wh);
}

static void accepted(const char *body)
{
	struct webhook wh;
	struct webhook_error err;
	int rc;

	webhook_init(&wh);
	rc = apply(&wh, WEBHOOK_CREATE, body, NULL, &err);
	CHECK_INT(rc, 0);
	if (rc != 0)
		fprintf(stderr, "  body: %s\n  error: %s %s %s\n", body, err.code,
			err.field, err.message);
	webhook_release(&wh);
}

static void test_create_defaults(void)
{
	struct webhook wh;
	struct webhook_error err;

	webhook_init(&wh);
	CHECK_INT(apply(&wh, WEBHOOK_CREATE,
			"{\"event\":\"Promotion.Created\",\"target\":\"https://hooks.acme.example/promo\"}",
			NULL, &err), 0);
	CHECK_INT(wh.event, EVENT_PROMOTION_CREATED);
	CHECK_STR(wh.target, "https://hooks.acme.example/promo");
	CHECK_INT(wh.enabled, 1);
	CHECK_INT(wh.period, PERIOD_NONE);
	CHECK_INT(wh.period_value, 0);
	CHECK_INT(wh.payload_type, PAYLOAD_DEFAULT);
	CHECK(wh.secret == NULL);
	CHECK_INT(wh.created_at_ms, NOW);
	CHECK_INT(wh.updated_at_ms, NOW);
	CHECK_INT(wh.disabled_at_ms, 0);
	webhook_release(&wh);

	webhook_init(&wh);
	CHECK_INT(apply(&wh, WEBHOOK_CREATE,
			"{\"event\":\"Promotion.StartingInPeriod\",\"target\":\"http://x.example:8080/a?b=c#d\","
			"\"enabled\":false,\"notificationPeriod\":\"Hours\",\"notificationPeriodValue\":2,"
			"\"payloadDataType\":\"Xml\",\"secret\":\"" SECRET "\"}",
			NULL, &err), 0);
	CHECK_INT(wh.period, PERIOD_HOURS);
	CHECK_INT(wh.period_value, 2);
	CHECK_INT(wh.payload_type, PAYLOAD_XML);
	CHECK_STR(wh.secret, SECRET);
	CHECK_INT(wh.enabled, 0);
	/* Created disabled: it reads like any disabled webhook. */
	CHECK_INT(wh.disabled_at_ms, NOW);
	CHECK(wh.disabled_reason != NULL);
	webhook_release(&wh);
}

static void test_validation(void)
{
	/* malformed and non-object bodies */
	refused("{\"event\":", "malformed_json", "");
	refused("", "malformed_json", "");
	refused("[1,2]", "validation_failed", "");
	/* required fields */
	refused("{\"target\":\"https://a.example/\"}", "validation_failed", "event");
	refused("{\"event\":\"Promotion.Created\"}", "validation_failed", "target");
	/* event */
	refused("{\"event\":\"Promotion.Exploded\",\"target\":\"https://a.example/\"}",
		"validation_failed", "event");
	refused("{\"event\":\"promotion.created\",\"target\":\"https://a.example/\"}",
		"validation_failed", "event");
	refused("{\"event\":7,\"target\":\"https://a.example/\"}", "validation_failed", "event");
	refused("{\"event\":null,\"target\":\"https://a.example/\"}", "validation_failed", "event");
	/* unknown, read-only and repeated fields */
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"colour\":1}",
		"validation_failed", "colour");
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"id\":\"x\"}",
		"validation_failed", "id");
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"companyId\":\"x\"}",
		"validation_failed", "companyId");
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"hasSecret\":true}",
		"validation_failed", "hasSecret");
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"event\":\"Promotion.Updated\"}",
		"validation_failed", "event");
	/* wrong types */
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"enabled\":\"yes\"}",
		"validation_failed", "enabled");
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"payloadDataType\":\"json\"}",
		"validation_failed", "payloadDataType");
	refused("{\"event\":\"Promotion.Created\",\"target\":[\"https://a.example/\"]}",
		"validation_failed", "target");
	/* notification period */
	refused("{\"event\":\"Promotion.StartingInPeriod\",\"target\":\"https://a.example/\"}",
		"validation_failed", "notificationPeriod");
	refused("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Days\"}",
		"validation_failed", "notificationPeriodValue");
	refused("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriodValue\":3}",
		"validation_failed", "notificationPeriod");
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Days\"}",
		"validation_failed", "notificationPeriod");
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"notificationPeriodValue\":1}",
		"validation_failed", "notificationPeriodValue");
	refused("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Weeks\",\"notificationPeriodValue\":1}",
		"validation_failed", "notificationPeriod");
	refused("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Days\",\"notificationPeriodValue\":0}",
		"validation_failed", "notificationPeriodValue");
	refused("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Days\",\"notificationPeriodValue\":1.5}",
		"validation_failed", "notificationPeriodValue");
	refused("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Days\",\"notificationPeriodValue\":\"2\"}",
		"validation_failed", "notificationPeriodValue");
	refused("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Days\",\"notificationPeriodValue\":367}",
		"validation_failed", "notificationPeriodValue");
	refused("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Hours\",\"notificationPeriodValue\":8785}",
		"validation_failed", "notificationPeriodValue");
	refused("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Minutes\",\"notificationPeriodValue\":99999999999999999999}",
		"validation_failed", "notificationPeriodValue");
	accepted("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Days\",\"notificationPeriodValue\":366}");
	accepted("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Hours\",\"notificationPeriodValue\":8784}");
	accepted("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Minutes\",\"notificationPeriodValue\":527040}");
	accepted("{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/\",\"notificationPeriod\":\"Minutes\",\"notificationPeriodValue\":2.0}");
	accepted("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"notificationPeriod\":null,\"notificationPeriodValue\":null}");
	/* secret: the form of the Standard Webhooks specification */
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"secret\":\"hunter2\"}",
		"validation_failed", "secret");
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"secret\":\"whsec_c2hvcnQ=\"}",
		"validation_failed", "secret");
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"secret\":42}",
		"validation_failed", "secret");
	accepted("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"secret\":null}");
	/* an escaped NUL would cut the string short */
	refused("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\\u0000x\"}",
		"validation_failed", "");
	accepted("{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"enabled\":true}");
}

static void test_targets(void)
{
	static const char *const good[] = {
		"https://hooks.acme.example/promo",
		"HTTPS://HOOKS.ACME.EXAMPLE",
		"http://10.0.0.1:8080/x",
		"http://[::1]:9000/hook",
		"https://host.example/p/a/t/h?q=1&r=%2F#frag",
		"https://host_name.example/a~b",
		"https://host.example/path@with-at?mail=a@b.example#x@y",
	};
	static const char *const bad[] = {
		"ftp://files.example/",
		"https:/hooks.example",
		"https://",
		"https:///path",
		"hooks.acme.example/promo",
		"https://host.example/with space",
		"https://host.example/\\u0001",
		"https://host.example:0/",
		"https://host.example:65536/",
		"https://host.example:/",
		"https://host.example:80a/",
		"https://ho st.example/",
		"https://host.example/%zz",
		"https://host.example/caf\xc3\xa9",
		"https://host.example/<script>",
		"https://[::1/",
		"https://a@b@host.example/",
		"https://user:p%40ss@host.example/p",
		"https://user:password@host.example/",
		"https://token@host.example/",
		"https://:pw@host.example/",
		"https://@host.example/",
		"javascript:alert(1)",
	};
	char body[4096];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"event\":\"Promotion.Created\",\"target\":\"%s\"}", good[i]);
		accepted(body);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"event\":\"Promotion.Created\",\"target\":\"%s\"}", bad[i]);
		refused(body, "validation_failed", "target");
	}
	/* 2048 bytes is the limit */
	{
		char url[2100];
		char big[2300];

		memset(url, 'a', sizeof(url));
		memcpy(url, "https://h.example/", 18);
		url[2048] = '\0';
		snprintf(big, sizeof(big),
			 "{\"event\":\"Promotion.Created\",\"target\":\"%s\"}", url);
		accepted(big);
		url[2048] = 'a';
		url[2049] = '\0';
		snprintf(big, sizeof(big),
			 "{\"event\":\"Promotion.Created\",\"target\":\"%s\"}", url);
		refused(big, "validation_failed", "target");
	}
}

/* User info is refused with a message naming the way to authenticate;
 * one stored before that rule never shows in the API view. */
static void test_target_userinfo(void)
{
	static const struct {
		const char *in, *out;
	} redact[] = {
		{ "https://user:password@host.example/p", "https://***@host.example/p" },
		{ "https://host.example/p@q", "https://host.example/p@q" },
		{ "http://tok@h:8080?x=@", "http://***@h:8080?x=@" },
		{ "Webhook disabled: Promotion.Created -> https://u:s3cret@h.example/x",
		  "Webhook disabled: Promotion.Created -> https://***@h.example/x" },
		{ "to https://a:b@one.example/ and http://c:d@two.example.",
		  "to https://***@one.example/ and http://***@two.example." },
		{ "\"target\":\"https://u:p@h.example/\"", "\"target\":\"https://***@h.example/\"" },
		{ "no url here: a@b", "no url here: a@b" },
		{ "trailing ://", "trailing ://" },
		{ "https://a@b@c.example/", "https://***@c.example/" },
		{ "", "" },
	};
	struct webhook wh;
	struct webhook_error err;
	struct buf b;
	size_t i;

	webhook_init(&wh);
	CHECK_INT(apply(&wh, WEBHOOK_CREATE,
			"{\"event\":\"Promotion.Created\",\"target\":\"https://u:hunter2@a.example/\"}",
			NULL, &err), -1);
	CHECK_STR(err.field, "target");
	CHECK(strstr(err.message, "user info") != NULL);
	CHECK(strstr(err.message, "signing secret") != NULL);
	CHECK(strstr(err.message, "hunter2") == NULL);
	webhook_release(&wh);

	buf_init(&b, 0);
	for (i = 0; i < sizeof(redact) / sizeof(redact[0]); i++) {
		buf_reset(&b);
		CHECK_INT(redact_userinfo(redact[i].in, strlen(redact[i].in), &b), 0);
		CHECK_STR(buf_str(&b), redact[i].out);
	}

	/* A target stored before the rule: delivered as stored (the stored
	 * form keeps it), shown redacted. */
	webhook_init(&wh);
	CHECK_INT(webhook_from_storage(&wh,
		"{\"id\":\"0123456789abcdef0123456789abcdef\",\"companyId\":\"c\","
		"\"event\":\"Promotion.Created\",\"target\":\"https://u:hunter2@a.example/x\","
		"\"enabled\":true,\"createdAt\":1,\"updatedAt\":1}",
		strlen("{\"id\":\"0123456789abcdef0123456789abcdef\",\"companyId\":\"c\","
		"\"event\":\"Promotion.Created\",\"target\":\"https://u:hunter2@a.example/x\","
		"\"enabled\":true,\"createdAt\":1,\"updatedAt\":1}")), 0);
	CHECK_STR(wh.target, "https://u:hunter2@a.example/x");
	buf_reset(&b);
	CHECK_INT(webhook_to_json(&wh, &b), 0);
	CHECK(strstr(buf_str(&b), "hunter2") == NULL);
	CHECK(strstr(buf_str(&b), "\"target\":\"https://***@a.example/x\"") != NULL);
	buf_reset(&b);
	CHECK_INT(webhook_to_storage(&wh, &b), 0);
	CHECK(strstr(buf_str(&b), "hunter2") != NULL);
	/* PATCH of another field keeps it; re-sending the shown target is
	 * refused rather than storing "***" as a user name. */
	CHECK_INT(apply(&wh, WEBHOOK_PATCH, "{\"enabled\":false}", NULL, &err), 0);
	CHECK_STR(wh.target, "https://u:hunter2@a.example/x");
	CHECK_INT(apply(&wh, WEBHOOK_PATCH, "{\"target\":\"https://***@a.example/x\"}",
			NULL, &err), -1);
	CHECK_STR(err.field, "target");
	buf_release(&b);
	webhook_release(&wh);
}

static void test_replace_and_patch(void)
{
	struct webhook wh, before;
	struct webhook_error err;
	int re;

	webhook_init(&wh);
	CHECK_INT(apply(&wh, WEBHOOK_CREATE,
			"{\"event\":\"Promotion.StartingInPeriod\",\"target\":\"https://a.example/\","
			"\"notificationPeriod\":\"Days\",\"notificationPeriodValue\":3,"
			"\"payloadDataType\":\"Json\",\"secret\":\"" SECRET "\"}",
			NULL, &err), 0);
	wh.id = strdup("0123456789abcdef0123456789abcdef");
	wh.company_id = strdup("acme");
	wh.revision = 4;

	/* PATCH: only the fields given */
	CHECK_INT(webhook_apply_json(&wh, WEBHOOK_PATCH, "{\"target\":\"https://b.example/\"}",
				     strlen("{\"target\":\"https://b.example/\"}"), NOW + 1000,
				     &re, &err), 0);
	CHECK_STR(wh.target, "https://b.example/");
	CHECK_INT(wh.period, PERIOD_DAYS);
	CHECK_INT(wh.period_value, 3);
	CHECK_STR(wh.secret, SECRET);
	CHECK_INT(wh.updated_at_ms, NOW + 1000);
	CHECK_INT(wh.created_at_ms, NOW);
	CHECK_STR(wh.id, "0123456789abcdef0123456789abcdef");
	CHECK_INT(wh.revision, 4);
	CHECK_INT(re, 0);

	/* a refused PATCH leaves the webhook as it was */
	CHECK_INT(webhook_copy(&before, &wh), 0);
	CHECK_INT(apply(&wh, WEBHOOK_PATCH, "{\"event\":\"Promotion.Created\"}", &re, &err), -1);
	CHECK_STR(err.field, "notificationPeriod");
	CHECK_STR(wh.target, before.target);
	CHECK_INT(wh.event, before.event);
	CHECK_INT(apply(&wh, WEBHOOK_PATCH,
			"{\"event\":\"Promotion.Created\",\"notificationPeriod\":null,\"notificationPeriodValue\":null}",
			&re, &err), 0);
	CHECK_INT(wh.event, EVENT_PROMOTION_CREATED);
	CHECK_INT(wh.period, PERIOD_NONE);
	webhook_release(&before);

	/* disabling by PATCH records when; enabling again clears and says so */
	CHECK_INT(apply(&wh, WEBHOOK_PATCH, "{\"enabled\":false}", &re, &err), 0);
	CHECK_INT(wh.enabled, 0);
	CHECK_INT(wh.disabled_at_ms, NOW);
	CHECK_INT(re, 0);
	CHECK_INT(apply(&wh, WEBHOOK_PATCH, "{\"enabled\":true}", &re, &err), 0);
	CHECK_INT(wh.enabled, 1);
	CHECK_INT(wh.disabled_at_ms, 0);
	CHECK(wh.disabled_reason == NULL);
	CHECK_INT(re, 1);
	CHECK_INT(apply(&wh, WEBHOOK_PATCH, "{\"enabled\":true}", &re, &err), 0);
	CHECK_INT(re, 0);

	/* PUT: omitted fields reset, the write-only secret is kept, and an
	 * omitted "enabled" means enabled (so PUT re-enables) */
	CHECK_INT(apply(&wh, WEBHOOK_PATCH, "{\"enabled\":false,\"payloadDataType\":\"Xml\"}", &re, &err), 0);
	CHECK_INT(apply(&wh, WEBHOOK_REPLACE,
			"{\"event\":\"Promotion.Updated\",\"target\":\"https://c.example/\"}", &re, &err), 0);
	CHECK_INT(wh.event, EVENT_PROMOTION_UPDATED);
	CHECK_INT(wh.payload_type, PAYLOAD_DEFAULT);
	CHECK_INT(wh.enabled, 1);
	CHECK_INT(re, 1);
	CHECK_STR(wh.secret, SECRET);
	CHECK_INT(apply(&wh, WEBHOOK_REPLACE,
			"{\"event\":\"Promotion.Updated\",\"target\":\"https://c.example/\",\"secret\":null}",
			&re, &err), 0);
	CHECK(wh.secret == NULL);
	CHECK_INT(apply(&wh, WEBHOOK_REPLACE, "{\"target\":\"https://c.example/\"}", &re, &err), -1);
	CHECK_STR(err.field, "event");
	webhook_release(&wh);
}

static void test_json_forms(void)
{
	struct webhook wh, back;
	struct webhook_error err;
	struct buf b;

	webhook_init(&wh);
	CHECK_INT(apply(&wh, WEBHOOK_CREATE,
			"{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/x\","
			"\"notificationPeriod\":\"Minutes\",\"notificationPeriodValue\":90,"
			"\"secret\":\"" SECRET "\"}", NULL, &err), 0);
	wh.id = strdup("0123456789abcdef0123456789abcdef");
	wh.company_id = strdup("acme");
	wh.revision = 7;

	buf_init(&b, 0);
	CHECK_INT(webhook_to_json(&wh, &b), 0);
	CHECK_STR(buf_str(&b),
		  "{\"id\":\"0123456789abcdef0123456789abcdef\",\"companyId\":\"acme\","
		  "\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://a.example/x\","
		  "\"enabled\":true,\"notificationPeriod\":\"Minutes\",\"notificationPeriodValue\":90,"
		  "\"payloadDataType\":null,\"hasSecret\":true,"
		  "\"createdAt\":\"2025-06-02T09:30:12.345Z\",\"updatedAt\":\"2025-06-02T09:30:12.345Z\","
		  "\"disabledAt\":null,\"disabledReason\":null}");
	CHECK(strstr(buf_str(&b), "whsec_") == NULL);

	buf_reset(&b);
	CHECK_INT(webhook_to_storage(&wh, &b), 0);
	CHECK(strstr(buf_str(&b), SECRET) != NULL);
	webhook_init(&back);
	CHECK_INT(webhook_from_storage(&back, b.data, b.len), 0);
	CHECK_STR(back.id, wh.id);
	CHECK_STR(back.company_id, "acme");
	CHECK_INT(back.event, EVENT_PROMOTION_ENDING_IN_PERIOD);
	CHECK_STR(back.target, wh.target);
	CHECK_INT(back.period, PERIOD_MINUTES);
	CHECK_INT(back.period_value, 90);
	CHECK_STR(back.secret, SECRET);
	CHECK_INT(back.created_at_ms, NOW);
	CHECK_INT(back.revision, 7);
	webhook_release(&back);

	/* As a Lua script rewrites it with cjson: other order, escaped
	 * slashes, numbers as doubles, a member this version does not know. */
	{
		static const char lua[] =
			"{\"revision\":8,\"disabledReason\":\"3 failures within 3600 s\","
			"\"enabled\":false,\"disabledAt\":1.748856700e+12,"
			"\"target\":\"https:\\/\\/a.example\\/x\",\"future\":{\"a\":[1]},"
			"\"event\":\"Promotion.Created\",\"companyId\":\"acme\","
			"\"notificationPeriod\":null,\"notificationPeriodValue\":null,"
			"\"payloadDataType\":\"Xml\",\"secret\":null,"
			"\"createdAt\":1748856612345,\"updatedAt\":1748856700000,"
			"\"id\":\"0123456789abcdef0123456789abcdef\"}";

		webhook_init(&back);
		CHECK_INT(webhook_from_storage(&back, lua, strlen(lua)), 0);
		CHECK_INT(back.enabled, 0);
		CHECK_INT(back.disabled_at_ms, 1748856700000LL);
		CHECK_STR(back.disabled_reason, "3 failures within 3600 s");
		CHECK_STR(back.target, "https://a.example/x");
		CHECK_INT(back.payload_type, PAYLOAD_XML);
		CHECK_INT(back.revision, 8);
		webhook_release(&back);
	}
	/* Broken documents are refused, not half-read. */
	webhook_init(&back);
	CHECK_INT(webhook_from_storage(&back, "{\"id\":\"x\"}", 10), -1);
	CHECK_INT(webhook_from_storage(&back, "nope", 4), -1);
	CHECK_INT(webhook_from_storage(&back,
		"{\"id\":\"x\",\"companyId\":\"c\",\"event\":\"Promotion.StartingInPeriod\",\"target\":\"https://a/\"}",
		strlen("{\"id\":\"x\",\"companyId\":\"c\",\"event\":\"Promotion.StartingInPeriod\",\"target\":\"https://a/\"}")), -1);
	webhook_release(&back);

	buf_release(&b);
	webhook_release(&wh);
}

static void test_settings(void)
{
	struct company_settings s, back;
	struct webhook_error err;
	struct buf b;

	company_settings_init(&s);
	buf_init(&b, 0);
	company_settings_to_json(&s, &b);
	CHECK_STR(buf_str(&b), "{\"webhookDisabledNotificationEmail\":null,\"webhookPayloadDataType\":\"Json\"}");

#define SET(body) company_settings_apply_json(&s, body, strlen(body), &err)
	CHECK_INT(SET("{\"webhookDisabledNotificationEmail\":\"ops@acme.example\",\"webhookPayloadDataType\":\"Xml\"}"), 0);
	CHECK_STR(s.notification_email, "ops@acme.example");
	CHECK_INT(s.payload_type, PAYLOAD_XML);
	CHECK_INT(SET("{\"webhookDisabledNotificationEmail\":\"not-an-email\"}"), -1);
	CHECK_STR(err.field, "webhookDisabledNotificationEmail");
	CHECK_STR(s.notification_email, "ops@acme.example");
	CHECK_INT(SET("{\"webhookDisabledNotificationEmail\":\"a@b\"}"), -1);
	CHECK_INT(SET("{\"webhookDisabledNotificationEmail\":\"a b@c.example\"}"), -1);
	CHECK_INT(SET("{\"webhookDisabledNotificationEmail\":\"a@b..example\"}"), -1);
	CHECK_INT(SET("{\"webhookDisabledNotificationEmail\":5}"), -1);
	CHECK_INT(SET("{\"webhookPayloadDataType\":\"Yaml\"}"), -1);
	CHECK_STR(err.field, "webhookPayloadDataType");
	CHECK_INT(SET("{\"webhookPayloadDataType\":null}"), -1);
	CHECK_INT(SET("{\"other\":1}"), -1);
	CHECK_STR(err.field, "other");
	CHECK_INT(SET("{"), -1);
	CHECK_STR(err.code, "malformed_json");
	/* PUT semantics: the omitted email goes back to null */
	CHECK_INT(SET("{\"webhookPayloadDataType\":\"Xml\"}"), 0);
	CHECK(s.notification_email == NULL);
	CHECK_INT(SET("{\"webhookDisabledNotificationEmail\":\"first.last+promo@mail.acme.example\",\"webhookPayloadDataType\":\"Json\"}"), 0);
#undef SET

	buf_reset(&b);
	company_settings_to_json(&s, &b);
	company_settings_init(&back);
	CHECK_INT(company_settings_from_json(&back, b.data, b.len), 0);
	CHECK_STR(back.notification_email, "first.last+promo@mail.acme.example");
	CHECK_INT(back.payload_type, PAYLOAD_JSON);
	company_settings_release(&back);
	company_settings_release(&s);
	buf_release(&b);
}

static void test_ids(void)
{
	CHECK(webhook_id_valid("0123456789abcdef0123456789abcdef"));
	CHECK(!webhook_id_valid("0123456789ABCDEF0123456789abcdef"));
	CHECK(!webhook_id_valid("0123456789abcdef0123456789abcde"));
	CHECK(!webhook_id_valid("0123456789abcdef0123456789abcdef0"));
	CHECK(webhook_company_id_valid("acme", 4));
	CHECK(webhook_company_id_valid("acme-eu_1.prod:x", 16));
	CHECK(!webhook_company_id_valid("", 0));
	CHECK(!webhook_company_id_valid("a/b", 3));
	CHECK(!webhook_company_id_valid("a b", 3));
}

int main(void)
{
	test_create_defaults();
	test_validation();
	test_targets();
	test_target_userinfo();
	test_replace_and_patch();
	test_json_forms();
	test_settings();
	test_ids();
	return TEST_DONE();
}
