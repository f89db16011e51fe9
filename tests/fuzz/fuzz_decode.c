/*
 * fuzz_decode: event_decode (service/event.c) on arbitrary Kafka messages,
 * both content modes, then both renderers on whatever decodes.
 *
 * Input: optional headers, then the value. When the input contains an empty
 * line, what comes before it is the headers, one a line, "name=value" or
 * "name" alone for a null header (the format of tests/golden/decode/
 * *.headers), and what follows is the value; a leading "\n" means no
 * headers. Otherwise the whole input is the value. A ce_specversion header
 * selects binary mode.
 *
 * Checks: a decoded event keeps its invariants (event.h): non-empty
 * strings, a consumed type, data a strictly valid JSON object; a refused one
 * leaves the event empty and says why. Every decoded event renders in both
 * formats, as valid JSON and well-formed XML: decode and render agree on
 * what is acceptable (the nesting limit, UTF-8).
 */
#include "promo_webhooks/event.h"
#include "promo_webhooks/render.h"

#include "fuzz_util.h"

#define MAX_HEADERS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xmlInitParser();
	return 0;
}

/* Splits the headers text (NUL-terminated, modified in place). */
static size_t split_headers(char *text, size_t len, struct event_header *h)
{
	size_t n = 0;
	char *line = text, *end = text + len;

	while (line < end && n < MAX_HEADERS) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *eq;

		if (!nl)
			nl = end;
		*nl = '\0';
		eq = memchr(line, '=', (size_t)(nl - line));
		h[n].name = line;
		if (eq) {
			*eq = '\0';
			h[n].value = eq + 1;
			h[n].value_len = (size_t)(nl - eq - 1);
		} else {
			h[n].value = NULL;
			h[n].value_len = 0;
		}
		n++;
		line = nl + 1;
	}
	return n;
}

/* The first empty line: the first "\n\n" in p (n bytes), or NULL. */
static const uint8_t *find_blank_line(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i++) {
		if (p[i] == '\n' && p[i + 1] == '\n')
			return p + i;
	}
	return NULL;
}

static int nonempty(const char *s)
{
	return s && *s;
}

/* 1 when JSON text p (n bytes) has no whitespace between its tokens (a
 * byte loop of its own, not the service's string scanner). */
static int compact(const char *p, size_t n)
{
	int in_string = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (in_string) {
			if (p[i] == '\\')
				i++;
			else if (p[i] == '"')
				in_string = 0;
		} else if (p[i] == '"') {
			in_string = 1;
		} else if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
			return 0;
		}
	}
	return 1;
}

static void check_renders(const struct event *ev, enum period_unit period)
{
	struct render_input in;
	struct buf out;
	const char *ct = NULL;

	memset(&in, 0, sizeof(in));
	in.message_id = "msg_fuzz";
	in.event = ev->type;
	in.company_id = ev->company_id;
	in.webhook_id = "0123456789abcdef0123456789abcdef";
	in.occurred_at = ev->time;
	in.data = ev->data;
	in.data_len = ev->data_len;
	in.period = period;
	in.period_value = 7;

	buf_init(&out, 0);
	FUZZ_ASSERT(render_body(PAYLOAD_JSON, &in, &out, &ct) == 0);
	FUZZ_ASSERT(strcmp(ct, "application/json") == 0);
	FUZZ_ASSERT(fuzz_json_valid(out.data, out.len, 1, NULL));
	buf_reset(&out);
	FUZZ_ASSERT(render_body(PAYLOAD_XML, &in, &out, &ct) == 0);
	FUZZ_ASSERT(strcmp(ct, "application/xml") == 0);
	FUZZ_ASSERT(fuzz_xml_valid(out.data, out.len));
	buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event_header headers[MAX_HEADERS];
	const uint8_t *value = data, *sep;
	size_t nheaders = 0, value_len = size;
	char *htext = NULL, *vcopy;
	struct event ev;
	struct fuzz_json info;
	char err[128];
	int rc;

	sep = find_blank_line(data, size);
	if (size > 0 && data[0] == '\n') {
		value = data + 1;
		value_len = size - 1;
	} else if (sep) {
		size_t hlen = (size_t)(sep - data);

		htext = fuzz_dup(data, hlen);
		nheaders = split_headers(htext, hlen, headers);
		value = sep + 2;
		value_len = size - hlen - 2;
	}
	vcopy = fuzz_dup(value, value_len);

	memset(err, 0, sizeof(err));
	rc = event_decode(vcopy, value_len, headers, nheaders, &ev, err,
			  sizeof(err));
	if (rc != 0) {
		FUZZ_ASSERT(rc == -1);
		FUZZ_ASSERT(err[0] != '\0');
		FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
		FUZZ_ASSERT(!ev.id && !ev.source && !ev.time && !ev.company_id &&
			    !ev.data && !ev.promotion_id);
	} else {
		FUZZ_ASSERT(nonempty(ev.id) && nonempty(ev.source) &&
			    nonempty(ev.time) && nonempty(ev.company_id));
		FUZZ_ASSERT(event_type_name(ev.type) != NULL);
		FUZZ_ASSERT(!event_type_is_derived(ev.type));
		FUZZ_ASSERT(ev.data && ev.data_len == strlen(ev.data));
		FUZZ_ASSERT(fuzz_json_valid(ev.data, ev.data_len, 1, &info));
		FUZZ_ASSERT(info.root_map);
		FUZZ_ASSERT(compact(ev.data, ev.data_len));
		FUZZ_ASSERT(info.max_depth <= RENDER_MAX_DEPTH);
		if (ev.type == EVENT_PROMOTION_CREATED ||
		    ev.type == EVENT_PROMOTION_UPDATED ||
		    ev.type == EVENT_PROMOTION_DELETED)
			FUZZ_ASSERT(nonempty(ev.promotion_id));
		else
			FUZZ_ASSERT(ev.promotion_id == NULL);
		check_renders(&ev, PERIOD_NONE);
		check_renders(&ev, PERIOD_DAYS);
		event_release(&ev);
	}
	free(vcopy);
	free(htext);
	return 0;
}
