/*
 * Unit tests of notice: the stored fields round trip into the contract's
 * notice message, subject and text rendered in C (the prose the failure
 * rule used to write in Lua), failures listed oldest first without their
 * ids; unreadable stored notices are refused.
 */
#include "promo_webhooks/notice.h"
#include "promo_webhooks/webhook.h"
#include "testutil.h"

static void test_render(void)
{
	static const char *const failures[] = {
		"{\"id\":\"00000000000000000001\",\"at\":\"2025-06-02T09:30:12.345Z\",\"status\":500,\"error\":null}",
		"{\"id\":\"00000000000000000002\",\"at\":\"2025-06-02T09:30:13.345Z\",\"status\":null,\"error\":\"timeout after 10000 ms\"}",
	};
	size_t lens[2] = { strlen(failures[0]), strlen(failures[1]) };
	struct notice_fields nf;
	struct buf stored, msg;
	char err[128];

	memset(&nf, 0, sizeof(nf));
	nf.to = "ops@acme.example";
	nf.company_id = "acme";
	nf.webhook_id = "w1";
	nf.event = "Promotion.Created";
	nf.target = "https://hooks.acme.example/a/b";
	nf.disabled_at = "2025-06-02T09:30:14.345Z";
	nf.count = 2;
	nf.window_ms = 5000;
	nf.last_status = 503;
	nf.last_error = "HTTP 503";
	nf.failures = failures;
	nf.failure_lens = lens;
	nf.n_failures = 2;
	buf_init(&stored, BUF_DEFAULT_MAX);
	buf_init(&msg, BUF_DEFAULT_MAX);
	CHECK_INT(notice_fields_encode(&nf, &stored), 0);
	CHECK_INT(notice_render(buf_str(&stored), stored.len, &msg, err, sizeof(err)), 0);
	CHECK_STR(buf_str(&msg),
		  "{\"type\":\"WebhookDisabled\",\"to\":\"ops@acme.example\","
		  "\"subject\":\"Webhook disabled: Promotion.Created -> https://hooks.acme.example/a/b\","
		  "\"text\":\"Your webhook w1 for Promotion.Created events to "
		  "https://hooks.acme.example/a/b has been disabled at 2025-06-02T09:30:14.345Z "
		  "after 2 failed deliveries within 5 s. Last failure: HTTP status 503 (HTTP 503). "
		  "Fix the receiver, then enable the webhook again (PATCH "
		  "/v1/companies/acme/webhooks/w1 with {\\\"enabled\\\": true}); enabling it "
		  "clears its failure history.\","
		  "\"companyId\":\"acme\",\"webhookId\":\"w1\",\"event\":\"Promotion.Created\","
		  "\"target\":\"https://hooks.acme.example/a/b\","
		  "\"disabledAt\":\"2025-06-02T09:30:14.345Z\",\"failures\":["
		  "{\"at\":\"2025-06-02T09:30:12.345Z\",\"status\":500,\"error\":null},"
		  "{\"at\":\"2025-06-02T09:30:13.345Z\",\"status\":null,\"error\":\"timeout after 10000 ms\"}]}");

	/* the last failure without a status; a window not in whole seconds */
	buf_reset(&stored);
	buf_reset(&msg);
	nf.last_status = 0;
	nf.last_error = "connection refused";
	nf.window_ms = 1500;
	nf.n_failures = 0;
	CHECK_INT(notice_fields_encode(&nf, &stored), 0);
	CHECK_INT(notice_render(buf_str(&stored), stored.len, &msg, err, sizeof(err)), 0);
	CHECK(strstr(buf_str(&msg), "within 1500 ms. Last failure: connection refused.") != NULL);
	CHECK(strstr(buf_str(&msg), "\"failures\":[]}") != NULL);

	buf_reset(&msg);
	CHECK_INT(notice_render("{\"to\":\"x\"}", 10, &msg, err, sizeof(err)), -1);
	CHECK_INT(notice_render("nope", 4, &msg, err, sizeof(err)), -1);
	buf_release(&stored);
	buf_release(&msg);
}

/* The one place a disable is written, and the failure rule's reason. */
static void test_disable(void)
{
	struct webhook wh;
	char reason[64];

	webhook_init(&wh);
	wh.enabled = 1;
	wh.updated_at_ms = 2000;
	webhook_failure_reason(3, 3600000, reason, sizeof(reason));
	CHECK_STR(reason, "3 failed deliveries within 3600 s");
	CHECK_INT(webhook_disable(&wh, 1000, reason), 0);
	CHECK_INT(wh.enabled, 0);
	CHECK_INT(wh.disabled_at_ms, 1000);
	CHECK_STR(wh.disabled_reason, "3 failed deliveries within 3600 s");
	CHECK_INT(wh.updated_at_ms, 2000); /* never moved back */
	CHECK_INT(webhook_disable(&wh, 3000, "again"), 0);
	CHECK_INT(wh.updated_at_ms, 3000);
	webhook_release(&wh);
}

int main(void)
{
	test_render();
	test_disable();
	return TEST_DONE();
}
