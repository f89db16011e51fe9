/*
 * render: the body POSTed to a webhook (pipeline stage 4, pure), contract
 * section 4, in both payload types. The only user of libxml2's writer.
 *
 * JSON:
 *
 *   {"id":...,"event":...,"companyId":...,"webhookId":...,
 *    "occurredAt":...,"data":{...}}
 *
 * compact and in that member order. data normally comes from event decode,
 * already compact, and is copied as it is. For the derived period events the
 * webhook's notificationPeriod and notificationPeriodValue are merged into
 * data, which needs one pass of yajl's callback parser over it.
 *
 * XML: one pass of yajl's callback parser over data drives an xmlTextWriter
 * whose output goes straight into the caller's buf (so its cap holds). The
 * writer escapes markup characters but checks nothing else, so every name
 * and every text goes through xml_name()/xml_text() first; see render.h for
 * the mapping. Neither yajl's parser (a heap stack) nor the writer (a heap
 * list of open elements) recurses, and RENDER_MAX_DEPTH bounds the nesting
 * anyway.
 */
#include "promo_webhooks/render.h"

#include <inttypes.h>
#include <string.h>

#include <libxml/xmlerror.h>
#include <libxml/xmlwriter.h>
#include <yajl/yajl_parse.h>

static const char *const period_members[] = {
	"notificationPeriod", "notificationPeriodValue",
};

/* 1 when a top-level member of data is one the period events replace. */
static int is_period_member(const unsigned char *key, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(period_members) / sizeof(period_members[0]); i++) {
		if (strlen(period_members[i]) == len &&
		    memcmp(period_members[i], key, len) == 0)
			return 1;
	}
	return 0;
}

static int is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims JSON whitespace from both ends of (*p, *len). */
static void trim(const char **p, size_t *len)
{
	while (*len && is_json_space((*p)[0])) {
		(*p)++;
		(*len)--;
	}
	while (*len && is_json_space((*p)[*len - 1]))
		(*len)--;
}

/* The separator a compact JSON text needs before the next value or key. */
static void sep(struct buf *b)
{
	char last;

	if (b->len == 0)
		return;
	last = b->data[b->len - 1];
	if (last != '{' && last != '[' && last != ':')
		buf_addc(b, ',');
}

/* Copies data into out, dropping its top-level period members and
 * appending the webhook's own before the closing brace. */
struct merge {
	struct buf *out;
	const char *period;      /* notificationPeriod value */
	int64_t period_value;    /* notificationPeriodValue */
	int depth;               /* containers open around the current token */
	int skip;                /* dropping the value of a replaced member */
	yajl_handle h;           /* the parser, for where data ends */
	size_t end;              /* bytes of data up to its closing brace */
};

/* Accounts for a scalar: 1 to copy it, 0 to drop it (the value of a
 * replaced member), -1 when it is the whole document (not an object). */
static int merge_scalar(struct merge *m)
{
	if (m->depth == 0)
		return -1; /* data must be an object */
	if (m->skip) {
		if (m->depth == 1)
			m->skip = 0;
		return 0;
	}
	sep(m->out);
	return 1;
}

static int cb_null(void *ctx)
{
	struct merge *m = ctx;
	int r = merge_scalar(m);

	if (r > 0)
		buf_add(m->out, "null", 4);
	return r >= 0;
}

static int cb_boolean(void *ctx, int v)
{
	struct merge *m = ctx;
	int r = merge_scalar(m);

	if (r > 0)
		buf_adds(m->out, v ? "true" : "false");
	return r >= 0;
}

static int cb_number(void *ctx, const char *s, size_t len)
{
	struct merge *m = ctx;
	int r = merge_scalar(m);

	if (r > 0)
		buf_add(m->out, s, len);
	return r >= 0;
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
	struct merge *m = ctx;
	int r = merge_scalar(m);

	if (r > 0)
		buf_add_json_string(m->out, (const char *)s, len);
	return r >= 0;
}

static int start_container(struct merge *m, char open)
{
	if (m->depth == 0 && open != '{')
		return 0;
	if (!m->skip) {
		sep(m->out);
		buf_addc(m->out, open);
	}
	m->depth++;
	return 1;
}

static int end_container(struct merge *m, char close)
{
	m->depth--;
	if (m->skip) {
		if (m->depth == 1)
			m->skip = 0;
		return 1;
	}
	if (m->depth == 0) {
		m->end = yajl_get_bytes_consumed(m->h);
		sep(m->out);
		buf_adds(m->out, "\"notificationPeriod\":");
		buf_add_json_string(m->out, m->period, strlen(m->period));
		buf_addf(m->out, ",\"notificationPeriodValue\":%" PRId64,
			 m->period_value);
	}
	buf_addc(m->out, close);
	return 1;
}

static int cb_start_map(void *ctx)
{
	return start_container(ctx, '{');
}

static int cb_end_map(void *ctx)
{
	return end_container(ctx, '}');
}

static int cb_start_array(void *ctx)
{
	return start_container(ctx, '[');
}

static int cb_end_array(void *ctx)
{
	return end_container(ctx, ']');
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
	struct merge *m = ctx;

	if (m->skip)
		return 1;
	if (m->depth == 1 && is_period_member(key, len)) {
		m->skip = 1;
		return 1;
	}
	sep(m->out);
	buf_add_json_string(m->out, (const char *)key, len);
	buf_addc(m->out, ':');
	return 1;
}

static const yajl_callbacks merge_callbacks = {
	cb_null, cb_boolean, NULL, NULL, cb_number, cb_string,
	cb_start_map, cb_map_key, cb_end_map, cb_start_array, cb_end_array,
};

/*
 * Runs data (len bytes) through yajl with the callbacks cb. *h is the
 * parser while it runs, so that the callback closing data can record in
 * *end how many bytes it took. Strings are not checked for UTF-8: the
 * renderers repair it (buf_add_json_string, xml_text) instead of failing.
 * Returns 0, or -1 when data is not one JSON value or a callback stopped.
 */
static int parse_data(const yajl_callbacks *cb, void *ctx, yajl_handle *h,
		      const size_t *end, const char *data, size_t len)
{
	yajl_status st;
	size_t i;

	*h = yajl_alloc(cb, NULL, ctx);
	if (!*h)
		return -1;
	if (!yajl_config(*h, yajl_dont_validate_strings, 1)) {
		yajl_free(*h);
		*h = NULL;
		return -1;
	}
	st = yajl_parse(*h, (const unsigned char *)data, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(*h);
	yajl_free(*h);
	*h = NULL;
	if (st != yajl_status_ok)
		return -1;
	/* yajl 2.1.0 ignores an unfinished token after a complete value
	 * ({}"abc passes as JSON): only whitespace may follow data. */
	for (i = *end; i < len; i++) {
		if (!is_json_space(data[i]))
			return -1;
	}
	return 0;
}

static int merge_period(const struct render_input *in, const char *period,
			struct buf *out)
{
	struct merge m = { out, period, in->period_value, 0, 0, NULL, 0 };

	return parse_data(&merge_callbacks, &m, &m.h, &m.end, in->data,
			  in->data_len);
}

static void add_member(struct buf *out, const char *name, const char *value)
{
	buf_adds(out, name);
	buf_add_json_string(out, value, strlen(value));
}

/*
 * Whether p (n bytes, starting with '{') is one object: the brace at its
 * start closes at its last byte, counting brackets outside strings. The
 * JSON body copies data as given, so `{}, "webhookId": "x"` (braced, but
 * an object and more) would add members to the envelope. Data from a
 * decoded event is always one object; this keeps render_json's own
 * contract whatever its caller, for one pass over data (found by
 * fuzz_render_json).
 */
static int one_object(const char *p, size_t n)
{
	size_t i, depth = 0;

	for (i = 0; i < n; i++) {
		char c = p[i];

		if (c == '"') {
			i = buf_json_string_end(p, n, i);
			if (i == n)
				return 0;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return 0;
			if (--depth == 0)
				return i == n - 1;
		}
	}
	return 0;
}

/* What both renderers check first: every string present, the event and
 * period in range, data one braced object. Sets the event and period names (period
 * NULL for PERIOD_NONE) and data trimmed of surrounding whitespace. */
static int check_input(const struct render_input *in, const char **event,
		       const char **period, const char **data,
		       size_t *data_len)
{
	*event = event_type_name(in->event);
	*period = NULL;
	*data = in->data;
	*data_len = in->data_len;
	if (!*event || !in->message_id || !in->company_id || !in->webhook_id ||
	    !in->occurred_at || !*data)
		return -1;
	if (in->period != PERIOD_NONE) {
		*period = period_unit_name(in->period);
		if (!*period)
			return -1;
	}
	trim(data, data_len);
	if (*data_len < 2 || (*data)[0] != '{' || (*data)[*data_len - 1] != '}' ||
	    !one_object(*data, *data_len))
		return -1;
	return 0;
}

int render_json(const struct render_input *in, struct buf *out)
{
	const char *event, *period, *data;
	size_t data_len;

	if (check_input(in, &event, &period, &data, &data_len) < 0)
		return -1;

	add_member(out, "{\"id\":", in->message_id);
	add_member(out, ",\"event\":", event);
	add_member(out, ",\"companyId\":", in->company_id);
	add_member(out, ",\"webhookId\":", in->webhook_id);
	add_member(out, ",\"occurredAt\":", in->occurred_at);
	buf_adds(out, ",\"data\":");
	if (period) {
		if (merge_period(in, period, out) < 0)
			return -1;
	} else {
		buf_add(out, data, data_len);
	}
	buf_addc(out, '}');
	return out->failed ? -1 : 0;
}

/* ---- XML ---------------------------------------------------------------- */

/* No code point: what utf8_next() yields for a byte that starts no valid
 * sequence. */
#define UTF8_BAD 0x110000u

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
static const char replacement[] = "\xef\xbf\xbd";

/* Decodes the UTF-8 sequence at s (n > 0 bytes): returns its length and
 * sets *cp, or returns 1 with *cp = UTF8_BAD when s[0] starts no valid
 * sequence (a stray continuation byte, a truncated sequence, an overlong
 * form, a surrogate, a value past U+10FFFF). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len, i;
	uint32_t v;

	*cp = UTF8_BAD;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
	} else {
		return 1;
	}
	if (len > n)
		return 1;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 1;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && v < 0x800) ||
	    (len == 4 && (v < 0x10000 || v > 0x10ffff)) ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 1;
	*cp = v;
	return len;
}

/* XML 1.0 production [2] Char. */
static int xml_is_char(uint32_t c)
{
	return c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c <= 0xd7ff) ||
	       (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}

/* XML 1.0 (fifth edition) production [4] NameStartChar, without ':'. */
static int xml_is_name_start(uint32_t c)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (c >= 'a' && c <= 'z') ||
	       (c >= 0xc0 && c <= 0xd6) || (c >= 0xd8 && c <= 0xf6) ||
	       (c >= 0xf8 && c <= 0x2ff) || (c >= 0x370 && c <= 0x37d) ||
	       (c >= 0x37f && c <= 0x1fff) || (c >= 0x200c && c <= 0x200d) ||
	       (c >= 0x2070 && c <= 0x218f) || (c >= 0x2c00 && c <= 0x2fef) ||
	       (c >= 0x3001 && c <= 0xd7ff) || (c >= 0xf900 && c <= 0xfdcf) ||
	       (c >= 0xfdf0 && c <= 0xfffd) || (c >= 0x10000 && c <= 0xeffff);
}

/* Production [4a] NameChar, without ':'. */
static int xml_is_name_char(uint32_t c)
{
	return xml_is_name_start(c) || c == '-' || c == '.' ||
	       (c >= '0' && c <= '9') || c == 0xb7 ||
	       (c >= 0x300 && c <= 0x36f) || (c >= 0x203f && c <= 0x2040);
}

/* Replaces out with the element name for a JSON member name (n bytes, any
 * bytes at all): see render.h. Returns 0, or -1 when out is full. */
static int xml_name(const char *s, size_t n, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	buf_reset(out);
	if (n == 0)
		buf_addc(out, '_');
	while (i < n) {
		uint32_t cp;
		size_t len = utf8_next(p + i, n - i, &cp);

		if (i == 0 && !xml_is_name_start(cp) && xml_is_name_char(cp))
			buf_addc(out, '_');
		if (xml_is_name_char(cp))
			buf_add(out, p + i, len);
		else
			buf_addc(out, '_');
		i += len;
	}
	return out->failed ? -1 : 0;
}

/* Replaces out with s (n bytes, any bytes at all) made fit for XML 1.0
 * character data: invalid UTF-8 and every character XML cannot carry (NUL
 * and the other C0 controls but tab, newline and carriage return; lone
 * surrogates; U+FFFE and U+FFFF) become U+FFFD. Markup characters are left
 * to the writer. Returns 0, or -1 when out is full. */
static int xml_text(const char *s, size_t n, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;

	buf_reset(out);
	while (i < n) {
		uint32_t cp;
		size_t len;

		if (p[i] >= 0x20 && p[i] < 0x80) {
			run++;
			i++;
			continue;
		}
		buf_add(out, p + i - run, run);
		run = 0;
		len = utf8_next(p + i, n - i, &cp);
		if (xml_is_char(cp))
			buf_add(out, p + i, len);
		else
			buf_add(out, replacement, sizeof(replacement) - 1);
		i += len;
	}
	buf_add(out, p + i - run, run);
	return out->failed ? -1 : 0;
}

/* The writer's state while data streams through yajl. */
struct xml_render {
	xmlTextWriterPtr w;
	struct buf scratch;           /* the name or text being written */
	char kinds[RENDER_MAX_DEPTH]; /* per open container: '{' or '[' */
	int depth;                    /* containers open, data's own included */
	int skip;                     /* dropping the value of a replaced member */
	yajl_handle h;                /* the parser, for where data ends */
	size_t end;                   /* bytes of data up to its closing brace */
	const char *period;           /* notificationPeriod, NULL for none */
	int64_t period_value;         /* notificationPeriodValue */
};

/* xmlTextWriter calls: 1 on success, 0 on failure, as yajl callbacks
 * return. */
static int xw_start(struct xml_render *x, const char *name)
{
	return xmlTextWriterStartElement(x->w, (const xmlChar *)name) >= 0;
}

static int xw_end(struct xml_render *x)
{
	return xmlTextWriterEndElement(x->w) >= 0;
}

static int xw_text(struct xml_render *x, const char *s, size_t n)
{
	if (xml_text(s, n, &x->scratch) < 0)
		return 0;
	return xmlTextWriterWriteString(x->w,
					(const xmlChar *)buf_str(&x->scratch)) >= 0;
}

/* <name>text</name>, text cleaned like any other. */
static int xw_element(struct xml_render *x, const char *name, const char *text)
{
	return xw_start(x, name) && xw_text(x, text, strlen(text)) && xw_end(x);
}

/* Opens the element a value lives in: an Item inside an array. Inside an
 * object the member's key has opened it already. */
static int xml_value_begin(struct xml_render *x)
{
	if (x->kinds[x->depth - 1] == '[')
		return xw_start(x, "Item");
	return 1;
}

/* A scalar: text is NULL for null, which leaves the element empty. */
static int xml_scalar(struct xml_render *x, const char *text, size_t len)
{
	if (x->depth == 0)
		return 0; /* data must be an object */
	if (x->skip) {
		if (x->depth == 1)
			x->skip = 0;
		return 1;
	}
	if (!xml_value_begin(x))
		return 0;
	if (text && !xw_text(x, text, len))
		return 0;
	return xw_end(x);
}

static int xml_null(void *ctx)
{
	return xml_scalar(ctx, NULL, 0);
}

static int xml_boolean(void *ctx, int v)
{
	return v ? xml_scalar(ctx, "true", 4) : xml_scalar(ctx, "false", 5);
}

static int xml_number(void *ctx, const char *s, size_t len)
{
	return xml_scalar(ctx, s, len);
}

static int xml_string(void *ctx, const unsigned char *s, size_t len)
{
	return xml_scalar(ctx, (const char *)s, len);
}

static int xml_start(struct xml_render *x, char kind)
{
	if (x->depth == 0 && kind != '{')
		return 0; /* data must be an object */
	if (x->depth >= RENDER_MAX_DEPTH)
		return 0;
	if (x->depth > 0 && !x->skip && !xml_value_begin(x))
		return 0;
	x->kinds[x->depth++] = kind;
	return 1;
}

/* Closing data itself appends the webhook's period members. */
static int xml_end(struct xml_render *x)
{
	char value[24];

	x->depth--;
	if (x->skip) {
		if (x->depth == 1)
			x->skip = 0;
		return 1;
	}
	if (x->depth > 0)
		return xw_end(x);
	x->end = yajl_get_bytes_consumed(x->h);
	if (!x->period)
		return 1;
	snprintf(value, sizeof(value), "%" PRId64, x->period_value);
	return xw_element(x, period_members[0], x->period) &&
	       xw_element(x, period_members[1], value);
}

static int xml_start_map(void *ctx)
{
	return xml_start(ctx, '{');
}

static int xml_end_map(void *ctx)
{
	return xml_end(ctx);
}

static int xml_start_array(void *ctx)
{
	return xml_start(ctx, '[');
}

static int xml_end_array(void *ctx)
{
	return xml_end(ctx);
}

static int xml_map_key(void *ctx, const unsigned char *key, size_t len)
{
	struct xml_render *x = ctx;

	if (x->skip)
		return 1;
	if (x->depth == 1 && x->period && is_period_member(key, len)) {
		x->skip = 1;
		return 1;
	}
	if (xml_name((const char *)key, len, &x->scratch) < 0)
		return 0;
	return xw_start(x, buf_str(&x->scratch));
}

static const yajl_callbacks xml_callbacks = {
	xml_null, xml_boolean, NULL, NULL, xml_number, xml_string,
	xml_start_map, xml_map_key, xml_end_map, xml_start_array, xml_end_array,
};

/* Streams data through yajl into the writer, between <Data> and </Data>. */
static int xml_data(struct xml_render *x, const char *data, size_t len)
{
	return parse_data(&xml_callbacks, x, &x->h, &x->end, data, len);
}

/* The writer's output goes to the caller's buf. */
static int xml_output_write(void *ctx, const char *p, int len)
{
	struct buf *out = ctx;

	if (len < 0 || buf_add(out, p, (size_t)len) < 0)
		return -1;
	return len;
}

static int xml_output_close(void *ctx)
{
	return 0;
}

/* libxml2 reports its own errors (a write refused by a full buf) on stderr
 * by default; render_xml returns -1 instead, so the report is dropped. */
static void xml_quiet(void *ctx, const char *msg, ...)
{
}

static int xml_document(struct xml_render *x, const struct render_input *in,
			const char *event, const char *data, size_t data_len)
{
	if (xmlTextWriterStartDocument(x->w, "1.0", "UTF-8", NULL) < 0 ||
	    !xw_start(x, "WebhookEvent") ||
	    !xw_element(x, "Id", in->message_id) ||
	    !xw_element(x, "Event", event) ||
	    !xw_element(x, "CompanyId", in->company_id) ||
	    !xw_element(x, "WebhookId", in->webhook_id) ||
	    !xw_element(x, "OccurredAt", in->occurred_at) ||
	    !xw_start(x, "Data"))
		return -1;
	if (xml_data(x, data, data_len) < 0)
		return -1;
	if (!xw_end(x) || !xw_end(x) || xmlTextWriterEndDocument(x->w) < 0 ||
	    xmlTextWriterFlush(x->w) < 0)
		return -1;
	return 0;
}

int render_xml(const struct render_input *in, struct buf *out)
{
	xmlGenericErrorFunc old_generic;
	xmlStructuredErrorFunc old_structured;
	void *old_generic_ctx, *old_structured_ctx;
	xmlOutputBufferPtr ob;
	struct xml_render x;
	const char *event, *period, *data;
	size_t data_len;
	int rc = -1;

	if (check_input(in, &event, &period, &data, &data_len) < 0)
		return -1;
	xmlInitParser();
	old_generic = xmlGenericError;
	old_generic_ctx = xmlGenericErrorContext;
	old_structured = xmlStructuredError;
	old_structured_ctx = xmlStructuredErrorContext;
	xmlSetGenericErrorFunc(NULL, xml_quiet);
	xmlSetStructuredErrorFunc(NULL, NULL);

	memset(&x, 0, sizeof(x));
	buf_init(&x.scratch, 0);
	x.period = period;
	x.period_value = in->period_value;
	ob = xmlOutputBufferCreateIO(xml_output_write, xml_output_close, out, NULL);
	if (!ob)
		goto out;
	/* The writer takes ownership of ob, but only when it succeeds. */
	x.w = xmlNewTextWriter(ob);
	if (!x.w) {
		xmlOutputBufferClose(ob);
		goto out;
	}
	ob = NULL;
	rc = xml_document(&x, in, event, data, data_len);
out:
	if (x.w)
		xmlFreeTextWriter(x.w);
	buf_release(&x.scratch);
	xmlSetGenericErrorFunc(old_generic_ctx, old_generic);
	xmlSetStructuredErrorFunc(old_structured_ctx, old_structured);
	return rc == 0 && !out->failed ? 0 : -1;
}

/* ---- the dispatcher ------------------------------------------------------ */

const char *render_content_type(enum payload_type type)
{
	return type == PAYLOAD_XML ? "application/xml" : "application/json";
}

int render_body(enum payload_type type, const struct render_input *in,
		struct buf *out, const char **content_type)
{
	int rc;

	switch (type) {
	case PAYLOAD_DEFAULT:
	case PAYLOAD_JSON:
		rc = render_json(in, out);
		break;
	case PAYLOAD_XML:
		rc = render_xml(in, out);
		break;
	default:
		return -1;
	}
	if (content_type)
		*content_type = render_content_type(type);
	return rc;
}
