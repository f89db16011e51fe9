/*
 * fuzz_render_json: render_json (service/render.c) on arbitrary data.
 *
 * Input: one control byte, then data. The control byte picks the period
 * (its low two bits: none, Minutes, Hours, Days) and a period value (the
 * byte as a signed number times a large odd constant, to reach negative and
 * wide values).
 *
 * Checks: with no period data is copied as given, so the body is valid
 * JSON exactly when data is (strings unchecked for UTF-8 on both sides);
 * with a period data is parsed and re-encoded, so rendering succeeds
 * exactly when data is a JSON object and the body is then strictly valid
 * JSON (UTF-8 repaired). Rendering appends, and is deterministic.
 */
#include "promo_webhooks/render.h"

#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct render_input in;
	struct buf out, again;
	struct fuzz_json info;
	char *copy;
	int rc, valid;

	if (size < 1)
		return 0;
	copy = fuzz_dup(data + 1, size - 1);
	memset(&in, 0, sizeof(in));
	in.message_id = "msg_fuzz";
	in.event = EVENT_PROMOTION_STARTING_IN_PERIOD;
	in.company_id = "acme";
	in.webhook_id = "0123456789abcdef0123456789abcdef";
	in.occurred_at = "2026-01-01T00:00:00Z";
	in.data = copy;
	in.data_len = size - 1;
	in.period = (enum period_unit)(data[0] & 3);
	in.period_value = (int64_t)(int8_t)data[0] * INT64_C(1000000000000007);

	valid = fuzz_json_valid(copy, size - 1, 0, &info) && info.root_map;
	buf_init(&out, 0);
	buf_init(&again, 0);
	buf_adds(&again, "x");
	rc = render_json(&in, &out);
	if (in.period == PERIOD_NONE) {
		if (rc == 0)
			FUZZ_ASSERT(fuzz_json_valid(out.data, out.len, 0, NULL) ==
				    valid);
	} else {
		FUZZ_ASSERT((rc == 0) == valid);
		if (rc == 0)
			FUZZ_ASSERT(fuzz_json_valid(out.data, out.len, 1, NULL));
	}
	FUZZ_ASSERT(render_json(&in, &again) == rc);
	if (rc == 0)
		FUZZ_ASSERT(again.len == out.len + 1 &&
			    memcmp(again.data + 1, out.data, out.len) == 0);
	buf_release(&out);
	buf_release(&again);
	free(copy);
	return 0;
}
