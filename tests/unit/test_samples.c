/*
 * Unit tests of samples.c: every event type has realistic sample data, and
 * its sample payload renders as the body a webhook would receive.
 */
#include "promo_webhooks/samples.h"
#include "testutil.h"

#include <yajl/yajl_tree.h>

static const char *member(yajl_val root, const char *a, const char *b)
{
	const char *path[3] = { a, b, NULL };
	yajl_val v = yajl_tree_get(root, path, yajl_t_string);

	return v ? v->u.string : NULL;
}

static void test_every_type(void)
{
	int t;

	for (t = 0; t < EVENT_TYPE_COUNT; t++) {
		enum event_type et = (enum event_type)t;
		const char *data = samples_data(et);
		struct buf b;
		yajl_val root, d;
		const char *pd[] = { "data", NULL };

		CHECK(data != NULL);
		if (!data)
			continue;
		root = yajl_tree_parse(data, NULL, 0);
		CHECK(YAJL_IS_OBJECT(root) && root->u.object.len >= 3);
		yajl_tree_free(root);

		buf_init(&b, 0);
		CHECK_INT(samples_render(et, "acme", SAMPLES_WEBHOOK_ID, PERIOD_NONE, 0,
					 PAYLOAD_JSON, &b), SAMPLES_OK);
		root = yajl_tree_parse(buf_str(&b), NULL, 0);
		CHECK(root != NULL);
		if (root) {
			CHECK_STR(member(root, "event", NULL), event_type_name(et));
			CHECK_STR(member(root, "companyId", NULL), "acme");
			CHECK_STR(member(root, "webhookId", NULL), SAMPLES_WEBHOOK_ID);
			CHECK(member(root, "occurredAt", NULL) != NULL);
			d = yajl_tree_get(root, pd, yajl_t_object);
			CHECK(d != NULL);
			if (event_type_is_derived(et)) {
				CHECK_STR(member(root, "data", "notificationPeriod"), "Hours");
				CHECK(member(root, "data", "promotionId") != NULL);
			}
			yajl_tree_free(root);
		}
		buf_release(&b);
	}
	CHECK(samples_data(EVENT_TYPE_COUNT) == NULL);
}

static void test_webhook_period_and_formats(void)
{
	struct buf b, again;
	yajl_val root;

	buf_init(&b, 0);
	buf_init(&again, 0);
	CHECK_INT(samples_render(EVENT_PROMOTION_ENDING_IN_PERIOD, "globex",
				 "0123456789abcdef0123456789abcdef", PERIOD_DAYS, 3,
				 PAYLOAD_DEFAULT, &b), SAMPLES_OK);
	root = yajl_tree_parse(buf_str(&b), NULL, 0);
	CHECK(root != NULL);
	if (root) {
		const char *pv[] = { "data", "notificationPeriodValue", NULL };
		yajl_val v = yajl_tree_get(root, pv, yajl_t_number);

		CHECK_STR(member(root, "data", "notificationPeriod"), "Days");
		CHECK(v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) == 3);
		CHECK(member(root, "id", NULL) && strncmp(member(root, "id", NULL), "msg_", 4) == 0);
		yajl_tree_free(root);
	}
	/* stable: the same webhook gets the same sample */
	CHECK_INT(samples_render(EVENT_PROMOTION_ENDING_IN_PERIOD, "globex",
				 "0123456789abcdef0123456789abcdef", PERIOD_DAYS, 3,
				 PAYLOAD_JSON, &again), SAMPLES_OK);
	CHECK_STR(buf_str(&again), buf_str(&b));

	/* XML: the same sample through the same renderer (its golden files
	 * and well-formedness are tests/unit/test_render_xml.c's). */
	buf_reset(&b);
	CHECK_INT(samples_render(EVENT_PROMOTION_CREATED, "acme", SAMPLES_WEBHOOK_ID,
				 PERIOD_NONE, 0, PAYLOAD_XML, &b), SAMPLES_OK);
	{
		static const char head[] =
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<WebhookEvent><Id>msg_";

		CHECK(strncmp(buf_str(&b), head, sizeof(head) - 1) == 0);
	}
	CHECK(strstr(buf_str(&b), "<Event>Promotion.Created</Event>"
			     "<CompanyId>acme</CompanyId>") != NULL);
	CHECK(strstr(buf_str(&b), "<channels><Item>Web</Item><Item>Mobile</Item>"
			     "</channels>") != NULL);
	buf_reset(&again);
	CHECK_INT(samples_render(EVENT_PROMOTION_ENDING_IN_PERIOD, "globex",
				 "0123456789abcdef0123456789abcdef", PERIOD_DAYS, 3,
				 PAYLOAD_XML, &again), SAMPLES_OK);
	CHECK(strstr(buf_str(&again), "<notificationPeriod>Days</notificationPeriod>"
			     "<notificationPeriodValue>3</notificationPeriodValue>"
			     "</Data></WebhookEvent>\n") != NULL);

	/* Out of range: a failure, never a crash. */
	buf_reset(&b);
	CHECK_INT(samples_render(EVENT_TYPE_COUNT, "acme", SAMPLES_WEBHOOK_ID,
				 PERIOD_NONE, 0, PAYLOAD_JSON, &b), SAMPLES_FAILED);
	CHECK_INT(samples_render(EVENT_PROMOTION_CREATED, "acme", SAMPLES_WEBHOOK_ID,
				 PERIOD_NONE, 0, (enum payload_type)3, &b),
		  SAMPLES_FAILED);
	CHECK_INT(samples_render(EVENT_PROMOTION_CREATED, NULL, SAMPLES_WEBHOOK_ID,
				 PERIOD_NONE, 0, PAYLOAD_XML, &b), SAMPLES_FAILED);
	CHECK_INT(samples_render(EVENT_PROMOTION_CREATED, "acme", NULL,
				 PERIOD_NONE, 0, PAYLOAD_XML, &b), SAMPLES_FAILED);
	CHECK_STR(samples_content_type(PAYLOAD_XML), "application/xml");
	CHECK_STR(samples_content_type(PAYLOAD_JSON), "application/json");
	CHECK_STR(samples_content_type(PAYLOAD_DEFAULT), "application/json");
	buf_release(&b);
	buf_release(&again);
}

/* The body of a test send: the sample with a given message id and time. */
static void test_message(void)
{
	static const char id[] = "msg_0123456789abcdef0123456789abcdef";
	static const char at[] = "2026-12-03T10:19:23.686Z";
	struct buf b, sample;
	yajl_val root;

	buf_init(&b, 0);
	buf_init(&sample, 0);
	CHECK_INT(samples_render_message(EVENT_PRODUCT_IMPORT_COMPLETED, "acme",
					 SAMPLES_WEBHOOK_ID, PERIOD_NONE, 0,
					 PAYLOAD_JSON, id, at, &b), SAMPLES_OK);
	root = yajl_tree_parse(buf_str(&b), NULL, 0);
	CHECK(root != NULL);
	if (root) {
		CHECK_STR(member(root, "id", NULL), id);
		CHECK_STR(member(root, "occurredAt", NULL), at);
		CHECK_STR(member(root, "event", NULL), "Product.ImportCompleted");
		CHECK_STR(member(root, "data", "importId"), "imp_1f7d4a08");
		yajl_tree_free(root);
	}
	/* the same data as the sample payload, only id and time differ */
	CHECK_INT(samples_render(EVENT_PRODUCT_IMPORT_COMPLETED, "acme",
				 SAMPLES_WEBHOOK_ID, PERIOD_NONE, 0, PAYLOAD_JSON,
				 &sample), SAMPLES_OK);
	CHECK(strstr(buf_str(&sample), strstr(buf_str(&b), "\"data\":")) != NULL);
	buf_reset(&b);
	CHECK_INT(samples_render_message(EVENT_PROMOTION_CREATED, "acme",
					 SAMPLES_WEBHOOK_ID, PERIOD_NONE, 0,
					 PAYLOAD_XML, id, at, &b), SAMPLES_OK);
	CHECK(strstr(buf_str(&b), "<Id>msg_0123456789abcdef0123456789abcdef</Id>") != NULL);
	CHECK(strstr(buf_str(&b), "<OccurredAt>2026-12-03T10:19:23.686Z</OccurredAt>") != NULL);
	CHECK_INT(samples_render_message(EVENT_PROMOTION_CREATED, "acme",
					 SAMPLES_WEBHOOK_ID, PERIOD_NONE, 0,
					 PAYLOAD_JSON, NULL, at, &b), SAMPLES_FAILED);
	CHECK_INT(samples_render_message(EVENT_PROMOTION_CREATED, "acme",
					 SAMPLES_WEBHOOK_ID, PERIOD_NONE, 0,
					 PAYLOAD_JSON, id, NULL, &b), SAMPLES_FAILED);
	buf_release(&b);
	buf_release(&sample);
}

int main(void)
{
	test_every_type();
	test_webhook_period_and_formats();
	test_message();
	return TEST_DONE();
}
