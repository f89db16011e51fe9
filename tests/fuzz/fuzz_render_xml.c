/*
 * fuzz_render_xml: render_xml (service/render.c) on arbitrary data, the
 * JSON member names, strings and nesting it has to map onto XML.
 *
 * Input: one control byte, then data. The control byte picks the period
 * (low two bits: none, Minutes, Hours, Days) and the period value; bit 2
 * sends the data also as the company id (up to its first NUL), so the
 * envelope's text gets arbitrary bytes too.
 *
 * Checks: rendering succeeds exactly when data is a JSON object (strings
 * unchecked for UTF-8) nested at most RENDER_MAX_DEPTH deep; the body is
 * then well-formed, namespace-well-formed UTF-8 XML, whatever the bytes.
 * Rendering appends, and is deterministic.
 */
#include "promo_webhooks/render.h"

#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xmlInitParser();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct render_input in;
	struct buf out, again;
	struct fuzz_json info;
	char *copy;
	int rc, expect;

	if (size < 1)
		return 0;
	copy = fuzz_dup(data + 1, size - 1);
	memset(&in, 0, sizeof(in));
	in.message_id = "msg_fuzz";
	in.event = EVENT_PROMOTION_ENDING_IN_PERIOD;
	in.company_id = (data[0] & 4) ? copy : "acme";
	in.webhook_id = "0123456789abcdef0123456789abcdef";
	in.occurred_at = "2026-01-01T00:00:00Z";
	in.data = copy;
	in.data_len = size - 1;
	in.period = (enum period_unit)(data[0] & 3);
	in.period_value = (int64_t)(int8_t)data[0] * INT64_C(1000000000000007);

	expect = fuzz_json_valid(copy, size - 1, 0, &info) && info.root_map &&
		 info.max_depth <= RENDER_MAX_DEPTH;
	buf_init(&out, 0);
	buf_init(&again, 0);
	buf_adds(&again, "x");
	rc = render_xml(&in, &out);
	FUZZ_ASSERT((rc == 0) == expect);
	if (rc == 0)
		FUZZ_ASSERT(fuzz_xml_valid(out.data, out.len));
	FUZZ_ASSERT(render_xml(&in, &again) == rc);
	if (rc == 0)
		FUZZ_ASSERT(again.len == out.len + 1 &&
			    memcmp(again.data + 1, out.data, out.len) == 0);
	buf_release(&out);
	buf_release(&again);
	free(copy);
	return 0;
}
