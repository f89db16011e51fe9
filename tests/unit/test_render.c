/*
 * Unit tests of render: the JSON body of contract section 4. Each valid case
 * is compared with tests/golden/render/NAME.json (the exact bytes POSTed,
 * no trailing newline); PW_GOLDEN_UPDATE=1 rewrites them from the code.
 */
#include "promo_webhooks/render.h"
#include "promo_webhooks/event.h"
#include "testutil.h"

#include <yajl/yajl_tree.h>

struct render_case {
	const char *name;
	struct render_input in;
};

#define DATA(s) s, sizeof(s) - 1

static const struct render_case cases[] = {
	{ "created", { "msg_0123456789abcdef0123456789abcdef",
		       EVENT_PROMOTION_CREATED, "acme",
		       "00112233445566778899aabbccddeeff",
		       "2026-11-28T08:35:38.123Z",
		       DATA("{\"promotionId\":\"P-42\",\"discount\":1.50,"
			    "\"huge\":123456789012345678901234567890}"),
		       PERIOD_NONE, 0 } },
	/* Whitespace around data is trimmed; inside it is kept as given. */
	{ "import_spaced_data", { "msg_1", EVENT_PRODUCT_IMPORT_COMPLETED,
				  "acme", "wh1", "2026-01-01T00:00:00Z",
				  DATA("  \n{\"rows\": 5}\t\n"), PERIOD_NONE,
				  0 } },
	{ "escaped_strings", { "msg_\"q\"", EVENT_COUPON_CODES_IMPORT_COMPLETED,
			       "ac\\me\n", "wh/1", "2026-01-01T00:00:00Z",
			       DATA("{}"), PERIOD_NONE, 0 } },
	{ "starting_hours", { "msg_2", EVENT_PROMOTION_STARTING_IN_PERIOD,
			      "acme", "wh2", "2026-12-01T07:00:00.000Z",
			      DATA("{\"promotionId\":\"P-42\","
				   "\"startDate\":\"2026-12-01T09:00:00+02:00\","
				   "\"n\":1e400}"),
			      PERIOD_HOURS, 2 } },
	/* Members of the same name in data are replaced, nested ones kept. */
	{ "ending_days_replaces", { "msg_3", EVENT_PROMOTION_ENDING_IN_PERIOD,
				    "acme", "wh3", "2026-12-30T23:59:59.500Z",
				    DATA("{ \"notificationPeriod\" : {\"x\":[1,{}]},"
					 " \"a\": [ true, null, \"\\u00e9\" ],"
					 " \"notificationPeriodValue\": 99,"
					 " \"inner\": {\"notificationPeriod\": \"kept\"} }"),
				    PERIOD_DAYS, 366 } },
	{ "starting_minutes_empty", { "msg_4", EVENT_PROMOTION_STARTING_IN_PERIOD,
				      "acme", "wh4", "2026-01-01T00:00:00Z",
				      DATA("{}"), PERIOD_MINUTES, 15 } },
};

static int write_file(const char *path, const char *s, size_t len)
{
	FILE *f = fopen(path, "wb");
	int rc;

	if (!f)
		return -1;
	rc = fwrite(s, 1, len, f) == len ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* The body is valid JSON with the six members in the contract's order. */
static void check_shape(const char *body, const struct render_input *in)
{
	static const char *const order[] = { "id", "event", "companyId",
					     "webhookId", "occurredAt", "data" };
	char errbuf[128];
	yajl_val root = yajl_tree_parse(body, errbuf, sizeof(errbuf));
	size_t i;

	CHECK(YAJL_IS_OBJECT(root));
	if (!YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		return;
	}
	CHECK_INT(root->u.object.len, 6);
	for (i = 0; i < 6 && i < root->u.object.len; i++)
		CHECK_STR(root->u.object.keys[i], order[i]);
	CHECK(YAJL_IS_OBJECT(root->u.object.values[5]));
	if (in->period != PERIOD_NONE) {
		const char *pp[] = { "notificationPeriod", NULL };
		const char *pv[] = { "notificationPeriodValue", NULL };
		yajl_val data = root->u.object.values[5];
		yajl_val p = yajl_tree_get(data, pp, yajl_t_string);
		yajl_val v = yajl_tree_get(data, pv, yajl_t_number);
		size_t k, seen = 0;

		CHECK_STR(YAJL_GET_STRING(p), period_unit_name(in->period));
		CHECK(v && YAJL_IS_INTEGER(v) &&
		      YAJL_GET_INTEGER(v) == in->period_value);
		for (k = 0; k < data->u.object.len; k++)
			seen += strncmp(data->u.object.keys[k], "notificationPeriod",
					18) == 0;
		CHECK_INT(seen, 2);
	}
	yajl_tree_free(root);
}

static void test_golden(void)
{
	const char *update = getenv("PW_GOLDEN_UPDATE");
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[128], path[512], *want;
		struct buf out;

		buf_init(&out, 0);
		CHECK_INT(render_json(&cases[i].in, &out), 0);
		snprintf(name, sizeof(name), "render/%s.json", cases[i].name);
		test_golden_path(name, path, sizeof(path));
		if (update && *update == '1') {
			CHECK_INT(write_file(path, buf_str(&out), out.len), 0);
		} else {
			want = test_read_file(path, NULL);
			CHECK(want != NULL);
			CHECK_STR(buf_str(&out), want ? want : "(missing golden)");
			free(want);
		}
		check_shape(buf_str(&out), &cases[i].in);
		buf_release(&out);
	}
}

/* Appends to what the buffer already holds. */
static void test_appends(void)
{
	struct buf out;

	buf_init(&out, 0);
	buf_adds(&out, "prefix:");
	CHECK_INT(render_json(&cases[5].in, &out), 0);
	CHECK(strncmp(buf_str(&out), "prefix:{\"id\":\"msg_4\",", 21) == 0);
	buf_release(&out);
}

/* buf_add_int, the printf-free number of the attempt log entries. */
static void test_add_int(void)
{
	struct buf out;

	buf_init(&out, 0);
	buf_add_int(&out, 0);
	buf_addc(&out, ' ');
	buf_add_int(&out, 204);
	buf_addc(&out, ' ');
	buf_add_int(&out, -17);
	buf_addc(&out, ' ');
	buf_add_int(&out, 9223372036854775807LL);
	buf_addc(&out, ' ');
	buf_add_int(&out, -9223372036854775807LL - 1);
	CHECK_STR(buf_str(&out), "0 204 -17 9223372036854775807 -9223372036854775808");
	buf_release(&out);
}

static void test_invalid(void)
{
	struct render_input in = cases[0].in;
	struct buf out;

	buf_init(&out, 0);

#define EXPECT_FAIL(mutation)                                                  \
	do {                                                                   \
		in = cases[0].in;                                              \
		mutation;                                                      \
		buf_reset(&out);                                               \
		CHECK_INT(render_json(&in, &out), -1);                         \
	} while (0)

	EXPECT_FAIL(in.data = "[1]"; in.data_len = 3);
	EXPECT_FAIL(in.data = "\"x\""; in.data_len = 3);
	EXPECT_FAIL(in.data = ""; in.data_len = 0);
	EXPECT_FAIL(in.data = "   "; in.data_len = 3);
	EXPECT_FAIL(in.data = "{"; in.data_len = 1);
	EXPECT_FAIL(in.data = NULL; in.data_len = 0);
	EXPECT_FAIL(in.message_id = NULL);
	EXPECT_FAIL(in.company_id = NULL);
	EXPECT_FAIL(in.webhook_id = NULL);
	EXPECT_FAIL(in.occurred_at = NULL);
	EXPECT_FAIL(in.event = EVENT_TYPE_COUNT);
	EXPECT_FAIL(in.period = (enum period_unit)7);
	/* With a period, data is parsed: broken JSON is caught. */
	EXPECT_FAIL(in.period = PERIOD_HOURS; in.data = "{\"a\":}"; in.data_len = 6);
	EXPECT_FAIL(in.period = PERIOD_HOURS; in.data = "{}{}"; in.data_len = 4);
	/* Without a period data is copied, but only one object: members
	 * after it would land in the envelope (fuzz_render_json found it). */
	EXPECT_FAIL(in.data = "{}{}"; in.data_len = 4);
	EXPECT_FAIL(in.data = "{\"a\":[0,{}]}, \"webhookId\": \"x\", \"b\": {}";
		    in.data_len = strlen(in.data));
	EXPECT_FAIL(in.data = "{\"a\":\"}\"}, \"c\":{}"; in.data_len = strlen(in.data));
	EXPECT_FAIL(in.data = "{]}"; in.data_len = 3);
	/* A full buffer. */
	{
		struct buf small;

		buf_init(&small, 16);
		CHECK_INT(render_json(&cases[0].in, &small), -1);
		buf_release(&small);
	}
	buf_release(&out);
}

/* Brackets and escaped quotes inside strings do not end data early. */
static void test_strings_in_data(void)
{
	struct render_input in = cases[0].in;
	struct buf out;

	buf_init(&out, 0);
	in.data = "{\"a\":\"}{\\\"]\",\"b\":[\"[\"]}";
	in.data_len = strlen(in.data);
	CHECK_INT(render_json(&in, &out), 0);
	CHECK(strstr(buf_str(&out), in.data) != NULL);
	buf_release(&out);
}

/* A decoded event renders with its data untouched. */
static void test_from_decode(void)
{
	static const char value[] =
		"{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"s\","
		"\"type\":\"Promotion.Updated\",\"time\":\"2026-01-01T00:00:00+01:00\","
		"\"companyid\":\"acme\",\"data\":{ \"promotionId\" : \"P\", "
		"\"x\": 0.10, \"y\": [1e5] }}";
	struct render_input in;
	struct event ev;
	struct buf out;
	char err[128];

	CHECK_INT(event_decode(value, sizeof(value) - 1, NULL, 0, &ev, err,
			       sizeof(err)), 0);
	memset(&in, 0, sizeof(in));
	in.message_id = "msg_x";
	in.event = ev.type;
	in.company_id = ev.company_id;
	in.webhook_id = "w";
	in.occurred_at = ev.time;
	in.data = ev.data;
	in.data_len = ev.data_len;
	buf_init(&out, 0);
	CHECK_INT(render_json(&in, &out), 0);
	CHECK_STR(buf_str(&out),
		  "{\"id\":\"msg_x\",\"event\":\"Promotion.Updated\","
		  "\"companyId\":\"acme\",\"webhookId\":\"w\","
		  "\"occurredAt\":\"2026-01-01T00:00:00+01:00\","
		  "\"data\":{\"promotionId\":\"P\",\"x\":0.10,\"y\":[1e5]}}");
	buf_release(&out);
	event_release(&ev);
}

int main(void)
{
	test_golden();
	test_appends();
	test_add_int();
	test_invalid();
	test_strings_in_data();
	test_from_decode();
	return TEST_DONE();
}
