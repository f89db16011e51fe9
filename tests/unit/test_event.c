/*
 * Unit tests of event: the type table, RFC 3339 parsing and formatting, and
 * decoding, the latter driven by the golden files in tests/golden/decode:
 *
 *   NAME.json     the Kafka message value (an empty file is an empty value)
 *   NAME.headers  optional: one header per line, "name=value", or "name"
 *                 alone for a null header
 *   NAME.out      the expected result: the decoded event, one field a line,
 *                 or "invalid: <reason>"
 *
 * PW_GOLDEN_UPDATE=1 rewrites the .out files from the current code (review
 * the diff before keeping it).
 */
#include "promo_webhooks/event.h"
#include "promo_webhooks/rfc3339.h"
#include "promo_webhooks/buf.h"
#include "testutil.h"

#include <dirent.h>
#include <inttypes.h>

#define MAX_HEADERS 32

static void test_types(void)
{
	enum event_type t;
	int i, derived = 0;

	CHECK_STR(event_type_name(EVENT_ATTRIBUTE_VALUES_IMPORT_COMPLETED),
		  "AttributeValues.ImportCompleted");
	CHECK_STR(event_type_name(EVENT_PROMOTION_UPDATED), "Promotion.Updated");
	CHECK_STR(event_type_name(EVENT_PROMOTION_ENDING_IN_PERIOD),
		  "Promotion.EndingInPeriod");
	CHECK(event_type_name(EVENT_TYPE_COUNT) == NULL);
	CHECK(event_type_name((enum event_type)-1) == NULL);
	CHECK(event_type_description(EVENT_TYPE_COUNT) == NULL);
	CHECK_STR(event_type_description(EVENT_COUPON_CODES_GENERATE_COMPLETED),
		  "Triggered after a voucher code generate action has completed.");
	CHECK_STR(event_type_description(EVENT_PROMOTION_STARTING_IN_PERIOD),
		  "Triggered when a promotion is due to start within a defined period.");

	for (i = 0; i < EVENT_TYPE_COUNT; i++) {
		const char *name = event_type_name((enum event_type)i);

		CHECK(name != NULL);
		CHECK(event_type_description((enum event_type)i) != NULL);
		CHECK_INT(event_type_parse(name, strlen(name), &t), 0);
		CHECK_INT(t, i);
		derived += event_type_is_derived((enum event_type)i);
	}
	CHECK_INT(derived, 2);
	CHECK(event_type_is_derived(EVENT_PROMOTION_STARTING_IN_PERIOD));
	CHECK(event_type_is_derived(EVENT_PROMOTION_ENDING_IN_PERIOD));
	CHECK(!event_type_is_derived(EVENT_PROMOTION_CREATED));
	CHECK(!event_type_is_derived(EVENT_TYPE_COUNT));

	CHECK_INT(event_type_parse("promotion.created", 17, &t), -1);
	CHECK_INT(event_type_parse("Promotion.Create", 16, &t), -1);
	CHECK_INT(event_type_parse("Promotion.Createdd", 18, &t), -1);
	CHECK_INT(event_type_parse("", 0, &t), -1);
	/* The length decides, not a terminating NUL. */
	CHECK_INT(event_type_parse("Promotion.CreatedXYZ", 17, &t), 0);
	CHECK_INT(t, EVENT_PROMOTION_CREATED);
}

struct time_case {
	const char *s;
	int ok;
	int64_t ms; /* computed independently with Python's datetime */
};

static const struct time_case time_cases[] = {
	{ "1970-01-01T00:00:00Z", 1, 0 },
	{ "2026-11-28T08:35:38.123456Z", 1, 1795854938123LL },
	{ "2026-11-28T08:35:38.5+00:00", 1, 1795854938500LL },
	{ "2026-12-01T09:00:00+02:00", 1, 1796108400000LL },
	{ "2026-12-31T23:59:59.5-05:30", 1, 1798781399500LL },
	{ "2027-01-01T00:00:00.999999999+14:00", 1, 1798711200999LL },
	{ "2026-06-15T10:20:30.1+01:00", 1, 1781515230100LL },
	{ "2026-03-01T12:00:00-00:00", 1, 1772366400000LL },
	{ "2026-01-01t00:00:00z", 1, 1767225600000LL },
	{ "2000-02-29T00:00:00Z", 1, 951782400000LL },
	{ "2024-02-29T23:59:60Z", 1, 1709251200000LL },
	{ "1969-12-31T23:59:59.999Z", 1, -1 },
	{ "0000-01-01T00:00:00Z", 1, -62167219200000LL },
	{ "0001-01-01T00:00:00Z", 1, -62135596800000LL },
	{ "9999-12-31T23:59:59.999Z", 1, 253402300799999LL },

	{ "", 0, 0 },
	{ "2026-01-01", 0, 0 },
	{ "2026-01-01T00:00:00", 0, 0 },
	{ "2026-01-01T00:00:00.Z", 0, 0 },
	{ "2026-01-01T00:00:00.", 0, 0 },
	{ "2026-01-01T00:00:00,5Z", 0, 0 },
	{ "2026-1-01T00:00:00Z", 0, 0 },
	{ "2026-01-01 00:00:00Z", 0, 0 },
	{ "2026-01-01X00:00:00Z", 0, 0 },
	{ "2026-01-01T24:00:00Z", 0, 0 },
	{ "2026-01-01T00:60:00Z", 0, 0 },
	{ "2026-01-01T00:00:61Z", 0, 0 },
	{ "2026-00-01T00:00:00Z", 0, 0 },
	{ "2026-13-01T00:00:00Z", 0, 0 },
	{ "2026-01-00T00:00:00Z", 0, 0 },
	{ "2026-01-32T00:00:00Z", 0, 0 },
	{ "2026-04-31T00:00:00Z", 0, 0 },
	{ "2026-02-29T00:00:00Z", 0, 0 },
	{ "2100-02-29T00:00:00Z", 0, 0 },
	{ "2026-01-01T00:00:00+24:00", 0, 0 },
	{ "2026-01-01T00:00:00+01:60", 0, 0 },
	{ "2026-01-01T00:00:00+0100", 0, 0 },
	{ "2026-01-01T00:00:00+01", 0, 0 },
	{ "2026-01-01T00:00:00+01:00:00", 0, 0 },
	{ "2026-01-01T00:00:00ZZ", 0, 0 },
	{ "2026-01-01T00:00:00GMT", 0, 0 },
	{ " 2026-01-01T00:00:00Z", 0, 0 },
	{ "2026-01-01T00:00:00Z ", 0, 0 },
	{ "+2026-01-01T00:00:00Z", 0, 0 },
	{ "-026-01-01T00:00:00Z", 0, 0 },
	{ "20260-01-01T00:00:00Z", 0, 0 },
	{ "2026-01-01T0a:00:00Z", 0, 0 },
};

static void test_parse_time(void)
{
	size_t i;
	int64_t ms;

	for (i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
		const struct time_case *c = &time_cases[i];
		int rc;

		ms = 12345;
		rc = rfc3339_parse(c->s, strlen(c->s), &ms);
		if (c->ok) {
			CHECK_INT(rc, 0);
			CHECK_INT(ms, c->ms);
		} else {
			CHECK_INT(rc, -1);
		}
		if ((rc == 0) != c->ok)
			fprintf(stderr, "  time case: \"%s\"\n", c->s);
	}
	/* Only len bytes are read: no NUL terminator needed. */
	CHECK_INT(rfc3339_parse("2026-01-01T00:00:00Zjunk", 20, &ms), 0);
	CHECK_INT(ms, 1767225600000LL);
	CHECK_INT(rfc3339_parse("2026-01-01T00:00:00.5Z", 21, &ms), -1);
}

static void test_format_time(void)
{
	static const struct {
		int64_t ms;
		const char *s;
	} cases[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 1795854938123LL, "2026-11-28T08:35:38.123Z" },
		{ -1, "1969-12-31T23:59:59.999Z" },
		{ 951782400000LL, "2000-02-29T00:00:00.000Z" },
		{ 253402300799999LL, "9999-12-31T23:59:59.999Z" },
		{ -62167219200000LL, "0000-01-01T00:00:00.000Z" },
	};
	char out[25];
	size_t i;
	int64_t ms, back;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rfc3339_format(cases[i].ms, out, sizeof(out));
		CHECK_STR(out, cases[i].s);
		CHECK_INT(rfc3339_parse(out, strlen(out), &back), 0);
		CHECK_INT(back, cases[i].ms);
	}
	/* Round trip over a spread of instants, leap days included. */
	for (ms = -5000000000000LL; ms < 5000000000000LL; ms += 7777777777LL) {
		rfc3339_format(ms, out, sizeof(out));
		back = 0;
		CHECK_INT(rfc3339_parse(out, strlen(out), &back), 0);
		if (back != ms) {
			CHECK_INT(back, ms);
			break;
		}
	}
	/* A short buffer is truncated, never overrun. */
	memset(out, 'x', sizeof(out));
	rfc3339_format(0, out, 5);
	CHECK_STR(out, "1970");
}

/* Parses a .headers file in place into hs[]; returns how many. */
static size_t parse_headers(char *text, struct event_header *hs, size_t max)
{
	size_t n = 0;
	char *line = text;

	while (line && *line && n < max) {
		char *nl = strchr(line, '\n');
		char *eq;

		if (nl)
			*nl = '\0';
		eq = strchr(line, '=');
		hs[n].name = line;
		if (eq) {
			*eq = '\0';
			hs[n].value = eq + 1;
			hs[n].value_len = strlen(eq + 1);
		} else {
			hs[n].value = NULL;
			hs[n].value_len = 0;
		}
		n++;
		line = nl ? nl + 1 : NULL;
	}
	return n;
}

/* The canonical text of a decode result, as kept in NAME.out. */
static void dump_result(int rc, const struct event *ev, const char *err,
			struct buf *out)
{
	if (rc < 0) {
		buf_addf(out, "invalid: %s\n", err);
		return;
	}
	buf_addf(out, "id=%s\nsource=%s\ntype=%s\ntime=%s\ntime_ms=%" PRId64
		 "\ncompany_id=%s\n",
		 ev->id, ev->source, event_type_name(ev->type), ev->time,
		 ev->time_ms, ev->company_id);
	buf_addf(out, "promotion_id=%s\n",
		 ev->promotion_id ? ev->promotion_id : "(null)");
	if (ev->has_start)
		buf_addf(out, "start_ms=%" PRId64 "\n", ev->start_ms);
	else
		buf_adds(out, "start_ms=(none)\n");
	if (ev->has_end)
		buf_addf(out, "end_ms=%" PRId64 "\n", ev->end_ms);
	else
		buf_adds(out, "end_ms=(none)\n");
	buf_adds(out, "data=");
	buf_add(out, ev->data, ev->data_len);
	buf_addc(out, '\n');
}

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

static void run_decode_case(const char *dir, const char *name, int update,
			    int *valid, int *invalid)
{
	char path[1024], err[256];
	struct event_header hs[MAX_HEADERS];
	struct event ev;
	struct buf out;
	char *value, *headers, *want;
	size_t value_len = 0, nh = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	value = test_read_file(path, &value_len);
	CHECK(value != NULL);
	if (!value)
		return;
	snprintf(path, sizeof(path), "%s/%s.headers", dir, name);
	headers = test_read_file(path, NULL);
	if (headers)
		nh = parse_headers(headers, hs, MAX_HEADERS);

	err[0] = '\0';
	rc = event_decode(value, value_len, hs, nh, &ev, err, sizeof(err));
	buf_init(&out, 0);
	dump_result(rc, &ev, err, &out);
	if (rc == 0)
		(*valid)++;
	else
		(*invalid)++;

	snprintf(path, sizeof(path), "%s/%s.out", dir, name);
	if (update) {
		CHECK_INT(write_file(path, buf_str(&out), out.len), 0);
	} else {
		want = test_read_file(path, NULL);
		CHECK(want != NULL);
		if (want && strcmp(buf_str(&out), want) != 0)
			fprintf(stderr, "decode case %s:\n", name);
		CHECK_STR(buf_str(&out), want ? want : "(missing .out file)");
		free(want);
	}
	if (rc == 0) {
		/* The decoded data is compact JSON and decodes to itself. */
		struct event again;
		static const struct event_header bin[] = {
			{ "ce_specversion", "1.0", 3 },
			{ "ce_id", "i", 1 },
			{ "ce_source", "s", 1 },
			{ "ce_type", "Product.ImportCompleted", 23 },
			{ "ce_time", "2026-01-01T00:00:00Z", 20 },
			{ "ce_companyid", "c", 1 },
		};

		CHECK_INT(event_decode(ev.data, ev.data_len, bin, 6, &again, err,
				       sizeof(err)), 0);
		CHECK_STR(again.data, ev.data);
		event_release(&again);
		event_release(&ev);
	} else {
		/* A failed decode leaves the event empty. */
		CHECK(ev.id == NULL && ev.data == NULL && ev.promotion_id == NULL);
		CHECK(strchr(err, '\n') == NULL);
	}
	buf_release(&out);
	free(headers);
	free(value);
}

static void test_decode_golden(void)
{
	char dir[512];
	const char *update = getenv("PW_GOLDEN_UPDATE");
	DIR *d;
	struct dirent *de;
	int valid = 0, invalid = 0;

	test_golden_path("decode", dir, sizeof(dir));
	d = opendir(dir);
	CHECK(d != NULL);
	if (!d)
		return;
	for (;;) {
		char name[256];
		size_t len;

		de = readdir(d);
		if (!de)
			break;
		len = strlen(de->d_name);
		if (len < 6 || len >= sizeof(name) ||
		    strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		memcpy(name, de->d_name, len - 5);
		name[len - 5] = '\0';
		run_decode_case(dir, name, update && *update == '1', &valid,
				&invalid);
	}
	closedir(d);
	/* Guards against an empty or misplaced golden directory. */
	CHECK(valid >= 8);
	CHECK(invalid >= 35);
}

/* Cases that files cannot express: a tombstone, unterminated input. */
static void test_decode_inline(void)
{
	static const char value[] =
		"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\","
		"\"type\":\"Promotion.Deleted\",\"time\":\"2026-01-01T00:00:00Z\","
		"\"companyid\":\"c\",\"data\":{\"promotionId\":\"P\"}}";
	static const struct event_header ce[] = {
		{ "ce_specversion", "1.0", 3 },
		{ "ce_id", "e", 1 },
		{ "ce_source", "s", 1 },
		{ "ce_type", "Promotion.Deleted", 17 },
		{ "ce_time", "2026-01-01T00:00:00Z", 20 },
		{ "ce_companyid", "c\0d", 3 },
	};
	char err[128], *copy;
	struct event ev;

	CHECK_INT(event_decode(NULL, 0, NULL, 0, &ev, err, sizeof(err)), -1);
	CHECK_STR(err, "empty value (tombstone)");
	CHECK_INT(event_decode(NULL, 0, ce, 6, &ev, err, sizeof(err)), -1);
	CHECK_STR(err, "empty value (tombstone)");
	CHECK_INT(event_decode("", 0, NULL, 0, &ev, err, sizeof(err)), -1);
	CHECK_STR(err, "empty value");

	/* The value is not NUL-terminated: a copy with junk after it. */
	copy = malloc(sizeof(value) + 8);
	CHECK(copy != NULL);
	if (copy) {
		memcpy(copy, value, sizeof(value) - 1);
		memcpy(copy + sizeof(value) - 1, "garbage!", 8);
		CHECK_INT(event_decode(copy, sizeof(value) - 1, NULL, 0, &ev, err,
				       sizeof(err)), 0);
		CHECK_STR(ev.promotion_id, "P");
		CHECK_INT(ev.type, EVENT_PROMOTION_DELETED);
		CHECK_STR(ev.data, "{\"promotionId\":\"P\"}");
		CHECK_INT(ev.data_len, strlen(ev.data));
		event_release(&ev);
		CHECK(ev.id == NULL);
		free(copy);
	}

	/* A header value with a NUL byte cannot become a C string. */
	CHECK_INT(event_decode("{\"promotionId\":\"P\"}", 19, ce, 6, &ev, err,
			       sizeof(err)), -1);
	CHECK_STR(err, "header contains a NUL byte: ce_companyid");

	/* A short err buffer gets a truncated, terminated reason. */
	CHECK_INT(event_decode("{", 1, NULL, 0, &ev, err, 4), -1);
	CHECK_STR(err, "not");

	/* Reasons quote input safely: printable and bounded. */
	{
		char big[400];
		struct buf b;

		buf_init(&b, 0);
		memset(big, 'X', sizeof(big));
		buf_adds(&b, "{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\","
			     "\"time\":\"2026-01-01T00:00:00Z\",\"companyid\":\"c\","
			     "\"data\":{},\"type\":\"");
		buf_add(&b, big, sizeof(big));
		buf_adds(&b, "\"}");
		CHECK_INT(event_decode(b.data, b.len, NULL, 0, &ev, err,
				       sizeof(err)), -1);
		CHECK(strncmp(err, "unknown event type: XXXX", 24) == 0);
		CHECK(strlen(err) < 100);
		CHECK(strcmp(err + strlen(err) - 3, "...") == 0);
		buf_release(&b);
	}
}

int main(void)
{
	test_types();
	test_parse_time();
	test_format_time();
	test_decode_golden();
	test_decode_inline();
	return TEST_DONE();
}
