/*
 * samples: the sample `data` of each event type and the sample payload
 * renderer behind the admin API's sample-payload endpoints. See
 * include/promo_webhooks/samples.h.
 *
 * The data is what Promo's own services publish for these events, trimmed
 * to a plausible, self-consistent example (one company "acme", one summer
 * promotion). Bodies come from render_body, the renderer real deliveries
 * use, in either payload type.
 */
#include "promo_webhooks/samples.h"
#include "promo_webhooks/render.h"
#include "promo_webhooks/sign.h"

#include <string.h>

/* The sample event time: an instant shortly after the imports below. */
#define SAMPLE_OCCURRED_AT "2025-06-02T09:30:12.345Z"

static const char promotion_data[] =
	"{\"promotionId\":\"PROMO-2025-SUMMER-20\","
	"\"name\":\"Summer Sale: 20% off swimwear\","
	"\"description\":\"20% off all swimwear for loyalty members\","
	"\"status\":\"Active\","
	"\"startDate\":\"2025-07-01T00:00:00Z\","
	"\"endDate\":\"2025-08-31T23:59:59Z\","
	"\"promotionType\":\"BasketLevelDiscount\","
	"\"channels\":[\"Web\",\"Mobile\"],"
	"\"modifiedBy\":\"jane.doe@acme.example\","
	"\"modifiedAt\":\"2025-06-02T09:30:11Z\"}";

static const char *const data_table[EVENT_TYPE_COUNT] = {
	[EVENT_ATTRIBUTE_VALUES_IMPORT_COMPLETED] =
		"{\"importId\":\"imp_5c2e91d0\","
		"\"fileName\":\"attribute-values-2025-06-02.csv\","
		"\"attributeName\":\"Brand\","
		"\"status\":\"Completed\","
		"\"totalRecords\":1250,\"importedRecords\":1248,"
		"\"failedRecords\":2,"
		"\"startedAt\":\"2025-06-02T09:28:40Z\","
		"\"completedAt\":\"2025-06-02T09:30:12Z\"}",
	[EVENT_COUPON_CODES_GENERATE_COMPLETED] =
		"{\"promotionId\":\"PROMO-2025-SUMMER-20\","
		"\"batchId\":\"gen_7a41c3f2\","
		"\"codePrefix\":\"SUMMER20-\","
		"\"requestedCount\":5000,\"generatedCount\":5000,"
		"\"validFrom\":\"2025-07-01T00:00:00Z\","
		"\"validTo\":\"2025-08-31T23:59:59Z\","
		"\"completedAt\":\"2025-06-02T09:30:12Z\"}",
	[EVENT_COUPON_CODES_IMPORT_COMPLETED] =
		"{\"promotionId\":\"PROMO-2025-SUMMER-20\","
		"\"importId\":\"imp_c09b2e77\","
		"\"fileName\":\"partner-coupons.csv\","
		"\"status\":\"Completed\","
		"\"totalRecords\":2000,\"importedRecords\":1996,"
		"\"duplicateRecords\":4,\"failedRecords\":0,"
		"\"completedAt\":\"2025-06-02T09:30:12Z\"}",
	[EVENT_COUPON_CODES_RESERVED_ACTIVATED] =
		"{\"promotionId\":\"PROMO-REFER-A-FRIEND\","
		"\"couponCode\":\"FRIEND-8KQ2-ZP4M\","
		"\"referrerCustomerId\":\"cust_100234\","
		"\"refereeCustomerId\":\"cust_208811\","
		"\"basketReference\":\"BASKET-889120\","
		"\"usageCount\":5,\"usageLimit\":5,"
		"\"activatedAt\":\"2025-06-02T09:30:12Z\"}",
	[EVENT_PRODUCT_IMPORT_COMPLETED] =
		"{\"importId\":\"imp_1f7d4a08\","
		"\"fileName\":\"products-2025-06-02.csv\","
		"\"status\":\"Completed\","
		"\"totalRecords\":18420,\"createdRecords\":312,"
		"\"updatedRecords\":18090,\"failedRecords\":18,"
		"\"startedAt\":\"2025-06-02T09:21:03Z\","
		"\"completedAt\":\"2025-06-02T09:30:12Z\"}",
	[EVENT_PROMOTION_CREATED] = promotion_data,
	[EVENT_PROMOTION_DELETED] =
		"{\"promotionId\":\"PROMO-2025-SUMMER-20\","
		"\"name\":\"Summer Sale: 20% off swimwear\","
		"\"deletedBy\":\"jane.doe@acme.example\","
		"\"deletedAt\":\"2025-06-02T09:30:11Z\"}",
	[EVENT_PROMOTION_UPDATED] = promotion_data,
	[EVENT_PROMOTION_STARTING_IN_PERIOD] = promotion_data,
	[EVENT_PROMOTION_ENDING_IN_PERIOD] = promotion_data,
};

const char *samples_data(enum event_type t)
{
	if ((int)t < 0 || t >= EVENT_TYPE_COUNT)
		return NULL;
	return data_table[t];
}

const char *samples_content_type(enum payload_type fmt)
{
	return render_content_type(fmt);
}

enum samples_result samples_render(enum event_type t, const char *company_id,
				   const char *webhook_id,
				   enum period_unit period,
				   int64_t period_value,
				   enum payload_type fmt, struct buf *out)
{
	char msg_id[SIGN_MESSAGE_ID_LEN];

	if (!webhook_id)
		return SAMPLES_FAILED;
	/* A message id derived like a real one, stable for a given webhook. */
	sign_message_id("urn:promo:samples", event_type_name(t), webhook_id, "",
			msg_id);
	return samples_render_message(t, company_id, webhook_id, period,
				      period_value, fmt, msg_id,
				      SAMPLE_OCCURRED_AT, out);
}

enum samples_result samples_render_message(enum event_type t,
					   const char *company_id,
					   const char *webhook_id,
					   enum period_unit period,
					   int64_t period_value,
					   enum payload_type fmt,
					   const char *message_id,
					   const char *occurred_at,
					   struct buf *out)
{
	struct render_input in;
	const char *data = samples_data(t);

	if (!data || !webhook_id || !message_id || !occurred_at ||
	    (fmt != PAYLOAD_DEFAULT && fmt != PAYLOAD_JSON && fmt != PAYLOAD_XML))
		return SAMPLES_FAILED;
	memset(&in, 0, sizeof(in));
	in.message_id = message_id;
	in.event = t;
	in.company_id = company_id;
	in.webhook_id = webhook_id;
	in.occurred_at = occurred_at;
	in.data = data;
	in.data_len = strlen(data);
	if (event_type_is_derived(t)) {
		in.period = period != PERIOD_NONE ? period : PERIOD_HOURS;
		in.period_value = period != PERIOD_NONE ? period_value : 2;
	}
	return render_body(fmt, &in, out, NULL) == 0 ? SAMPLES_OK : SAMPLES_FAILED;
}
