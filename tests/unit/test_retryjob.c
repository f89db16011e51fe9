/*
 * Unit tests of retryjob: a job survives the round trip through its text
 * byte for byte (data included), malformed jobs are refused, and a period
 * occurrence's plain fields become its first attempt's job with the message
 * id derived in C.
 */
#include "promo_webhooks/retryjob.h"
#include "promo_webhooks/sign.h"
#include "testutil.h"

static void test_round_trip(void)
{
	static char data[] = "{\"n\":12.50,\"s\":\"a\\\"b\\u0000c\",\"u\":\"\xc3\xa9\",\"a\":[1,null]}";
	struct retry_job in = { 0 }, out;
	struct buf b;
	char err[128];

	in.webhook_id = "0123456789abcdef0123456789abcdef";
	in.message_id = "msg_00112233445566778899aabbccddeeff";
	in.event_id = "ev-1";
	in.type = EVENT_PROMOTION_ENDING_IN_PERIOD;
	in.company_id = "acme";
	in.occurred_at = "2026-11-28T10:00:00.250+01:00";
	in.data = data;
	in.data_len = sizeof(data) - 1;
	in.period = PERIOD_HOURS;
	in.period_value = 2;
	in.attempt = 3;

	buf_init(&b, 0);
	CHECK(retry_job_encode(&in, &b) == 0);
	CHECK(retry_job_decode(&out, b.data, b.len, err, sizeof(err)) == 0);
	CHECK_STR(out.webhook_id, in.webhook_id);
	CHECK_STR(out.message_id, in.message_id);
	CHECK_STR(out.event_id, in.event_id);
	CHECK_INT(out.type, EVENT_PROMOTION_ENDING_IN_PERIOD);
	CHECK_STR(out.company_id, "acme");
	CHECK_STR(out.occurred_at, in.occurred_at);
	CHECK_STR(out.data, data);
	CHECK_INT(out.data_len, sizeof(data) - 1);
	CHECK_INT(out.period, PERIOD_HOURS);
	CHECK_INT(out.period_value, 2);
	CHECK_INT(out.attempt, 3);
	retry_job_release(&out);

	/* Without a period the job has none after decoding either. */
	in.type = EVENT_PROMOTION_CREATED;
	in.period = PERIOD_NONE;
	buf_reset(&b);
	CHECK(retry_job_encode(&in, &b) == 0);
	CHECK(strstr(b.data, "period") == NULL);
	CHECK(retry_job_decode(&out, b.data, b.len, err, sizeof(err)) == 0);
	CHECK_INT(out.period, PERIOD_NONE);
	retry_job_release(&out);
	buf_release(&b);
}

static void test_refused(void)
{
	static const char *const bad[] = {
		"",
		"[]",
		"not json",
		"{\"webhookId\":\"w\"}",
		"{\"webhookId\":\"w\",\"messageId\":\"m\",\"eventId\":\"e\",\"event\":\"Nope\",\"companyId\":\"c\",\"occurredAt\":\"t\",\"attempt\":2,\"data\":\"{}\"}",
		"{\"webhookId\":\"w\",\"messageId\":\"m\",\"eventId\":\"e\",\"event\":\"Promotion.Created\",\"companyId\":\"c\",\"occurredAt\":\"t\",\"attempt\":0,\"data\":\"{}\"}",
		"{\"webhookId\":\"w\",\"messageId\":\"m\",\"eventId\":\"e\",\"event\":\"Promotion.Created\",\"companyId\":\"c\",\"occurredAt\":\"t\",\"attempt\":2,\"data\":{}}",
		"{\"webhookId\":\"w\",\"messageId\":\"m\",\"eventId\":\"e\",\"event\":\"Promotion.Created\",\"companyId\":\"c\",\"occurredAt\":\"t\",\"attempt\":2,\"data\":\"{}\",\"period\":\"Weeks\",\"periodValue\":1}",
	};
	struct retry_job out;
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(retry_job_decode(&out, bad[i], strlen(bad[i]), err, sizeof(err)) < 0);
		CHECK(err[0] != '\0');
		CHECK(out.webhook_id == NULL && out.data == NULL);
	}
}

static void test_occurrence(void)
{
	static const char rec[] =
		"{\"webhookId\":\"w1\",\"companyId\":\"acme\",\"promotionId\":\"P1\","
		"\"date\":\"end\",\"at\":\"1767225660000\",\"occurredAt\":\"2026-01-01T00:00:00.000Z\","
		"\"event\":\"Promotion.EndingInPeriod\",\"period\":\"Hours\",\"periodValue\":2,"
		"\"data\":\"{\\\"promotionId\\\":\\\"P1\\\"}\"}";
	static const char lacking[] =
		"{\"webhookId\":\"w1\",\"companyId\":\"acme\",\"promotionId\":\"P1\","
		"\"occurredAt\":\"t\",\"event\":\"Promotion.EndingInPeriod\",\"data\":\"{}\"}";
	char want[SIGN_MESSAGE_ID_LEN], err[128];
	struct retry_job job;

	CHECK_INT(retry_job_decode(&job, rec, strlen(rec), err, sizeof(err)), 0);
	CHECK_STR(job.event_id, "P1:end:1767225660000");
	sign_message_id(RETRY_JOB_PERIOD_SOURCE, "P1:end:1767225660000", "w1", "", want);
	CHECK_STR(job.message_id, want);
	CHECK_INT(job.attempt, 1);
	CHECK_INT(job.type, EVENT_PROMOTION_ENDING_IN_PERIOD);
	CHECK_INT(job.period, PERIOD_HOURS);
	CHECK_INT(job.period_value, 2);
	CHECK_STR(job.data, "{\"promotionId\":\"P1\"}");
	retry_job_release(&job);
	CHECK_INT(retry_job_decode(&job, lacking, strlen(lacking), err, sizeof(err)), -1);
}

int main(void)
{
	test_round_trip();
	test_occurrence();
	test_refused();
	return TEST_DONE();
}
