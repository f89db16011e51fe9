/*
 * event: the event type table, CloudEvents decoding of a Kafka message in
 * both content modes (pipeline stage 2, pure; its times: rfc3339.c).
 *
 * Decoding streams the value through yajl's callback parser once: the
 * CloudEvents attributes and the data members the service reads are picked
 * out on the way, and data itself is copied from the checked text where it
 * stands, only the whitespace between its tokens left out: every string
 * and number reaches the webhook as it was written (escapes included), and
 * neither a parse tree nor a second serialisation is built on the hot path.
 */
#include "promo_webhooks/event.h"
#include "promo_webhooks/buf.h"
#include "promo_webhooks/rfc3339.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

struct event_type_info {
	const char *name;
	const char *description; /* from the product help (Promo Core > Webhooks) */
	int derived;             /* produced by the service, never consumed */
};

static const struct event_type_info event_types[EVENT_TYPE_COUNT] = {
	[EVENT_ATTRIBUTE_VALUES_IMPORT_COMPLETED] = {
		"AttributeValues.ImportCompleted",
		"Triggered after an attribute values import action has completed.", 0 },
	[EVENT_COUPON_CODES_GENERATE_COMPLETED] = {
		"CouponCodes.GenerateCompleted",
		"Triggered after a voucher code generate action has completed.", 0 },
	[EVENT_COUPON_CODES_IMPORT_COMPLETED] = {
		"CouponCodes.ImportCompleted",
		"Triggered after a coupon import action is completed.", 0 },
	[EVENT_COUPON_CODES_RESERVED_ACTIVATED] = {
		"CouponCodes.ReservedActivated",
		"Where a refer-a-friend promotion has been applied to a confirmed "
		"basket - triggered when the referral code is fully utilized.", 0 },
	[EVENT_PRODUCT_IMPORT_COMPLETED] = {
		"Product.ImportCompleted",
		"Triggered after a product import action has completed.", 0 },
	[EVENT_PROMOTION_CREATED] = {
		"Promotion.Created",
		"Triggered when a promotion is created in the Promo Portal or via "
		"the Promo API.", 0 },
	[EVENT_PROMOTION_DELETED] = {
		"Promotion.Deleted",
		"Triggered when a promotion is deleted in the Promo Portal or via "
		"the Promo API.", 0 },
	[EVENT_PROMOTION_UPDATED] = {
		"Promotion.Updated",
		"Triggered when a promotion is updated in the Promo Portal or via "
		"the Promo API.", 0 },
	[EVENT_PROMOTION_STARTING_IN_PERIOD] = {
		"Promotion.StartingInPeriod",
		"Triggered when a promotion is due to start within a defined period.", 1 },
	[EVENT_PROMOTION_ENDING_IN_PERIOD] = {
		"Promotion.EndingInPeriod",
		"Triggered when a promotion is due to end within a defined period.", 1 },
};

static int event_type_valid(enum event_type t)
{
	return (int)t >= 0 && t < EVENT_TYPE_COUNT;
}

const char *event_type_name(enum event_type t)
{
	return event_type_valid(t) ? event_types[t].name : NULL;
}

const char *event_type_description(enum event_type t)
{
	return event_type_valid(t) ? event_types[t].description : NULL;
}

int event_type_is_derived(enum event_type t)
{
	return event_type_valid(t) && event_types[t].derived;
}

int event_type_parse(const char *name, size_t len, enum event_type *out)
{
	int i;

	for (i = 0; i < EVENT_TYPE_COUNT; i++) {
		const char *n = event_types[i].name;

		if (strlen(n) == len && memcmp(n, name, len) == 0) {
			*out = (enum event_type)i;
			return 0;
		}
	}
	return -1;
}

/* ---- decoding ---------------------------------------------------------- */

/* The CloudEvents attributes the service requires, in the order they are
 * checked (so the reason names the first problem). */
enum attr {
	ATTR_SPECVERSION = 0,
	ATTR_ID,
	ATTR_SOURCE,
	ATTR_TYPE,
	ATTR_TIME,
	ATTR_COMPANYID,
	ATTR_DATA,  /* the data member; an object, not a string attribute */
	ATTR_COUNT,
	ATTR_NONE = ATTR_COUNT
};

static const char *const attr_names[ATTR_COUNT] = {
	"specversion", "id", "source", "type", "time", "companyid", "data",
};

static const char *const attr_headers[ATTR_DATA] = {
	"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time",
	"ce_companyid",
};

/* The most containers data may nest, data itself counted. Deeper data is
 * refused here, where the message can still go to the dead-letter topic,
 * rather than failing every render later: the same number as render.h's
 * RENDER_MAX_DEPTH (tests/unit/test_render_xml.c holds them together). */
#define DATA_MAX_DEPTH 32

/* Members of data the service reads. */
enum field {
	FIELD_PROMOTION_ID = 0,
	FIELD_START_DATE,
	FIELD_END_DATE,
	FIELD_COUNT,
	FIELD_NONE = FIELD_COUNT
};

static const char *const field_names[FIELD_COUNT] = {
	"promotionId", "startDate", "endDate",
};

/* What a captured member held. */
enum slot_kind {
	SLOT_ABSENT = 0, /* not seen */
	SLOT_STRING,     /* a string: str/len hold a copy */
	SLOT_NULL,       /* JSON null */
	SLOT_OTHER,      /* any other JSON value */
};

struct slot {
	enum slot_kind kind;
	char *str;  /* owned, NUL-terminated copy when kind is SLOT_STRING */
	size_t len;
};

struct decode {
	int binary;          /* binary content mode: the value is data itself */
	int depth;           /* containers open around the current token */
	yajl_handle h;       /* the parser, for where the value ends */
	size_t end;          /* bytes of the value up to its closing brace */
	const char *text;    /* the text being parsed (the value, or its repaired copy) */
	int data_level;      /* depth of data's own members (2 structured, 1 binary) */
	int in_data;         /* the parser is inside data */
	size_t data_start;   /* offset of data's opening brace in text */
	enum attr attr;      /* top-level member whose value comes next */
	enum field field;    /* data member whose value comes next */
	struct slot attrs[ATTR_COUNT];
	struct slot fields[FIELD_COUNT];
	struct buf data;     /* the data object, compact, once it closed */
	const char *fail;    /* why a callback stopped the parse */
	char failbuf[96];    /* storage for a formatted fail */
};

static void slot_release(struct slot *s)
{
	free(s->str);
	s->str = NULL;
	s->len = 0;
	s->kind = SLOT_ABSENT;
}

static int slot_set_string(struct slot *s, const void *p, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return -1;
	if (len)
		memcpy(copy, p, len);
	copy[len] = '\0';
	slot_release(s);
	s->kind = SLOT_STRING;
	s->str = copy;
	s->len = len;
	return 0;
}

static void slot_set_kind(struct slot *s, enum slot_kind kind)
{
	slot_release(s);
	s->kind = kind;
}

/* A reason may quote input: keep it printable ASCII and short, since it
 * travels as a Kafka header and into logs. */
static void quote_input(char *out, size_t outlen, const char *p, size_t len)
{
	size_t i, n = 0, limit = 64;

	if (outlen == 0)
		return;
	for (i = 0; i < len && i < limit && n + 1 < outlen; i++) {
		unsigned char c = (unsigned char)p[i];

		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (i < len && n + 3 < outlen) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static void set_reason(char *err, size_t errlen, const char *what,
		       const char *p, size_t len)
{
	char quoted[72];

	quote_input(quoted, sizeof(quoted), p, len);
	snprintf(err, errlen, "%s%s", what, quoted);
}

/*
 * Called before every value (scalar or container start) with the kind it
 * will have. Decides where the value belongs: captured as an attribute or
 * data member, the root of the document, or ignored (the rest of data is
 * copied when data closes).
 * Returns 0 to stop the parse (d->fail says why).
 */
static int on_value(struct decode *d, enum slot_kind kind, const void *str,
		    size_t len, int is_map)
{
	if (d->in_data) {
		if (d->depth == d->data_level && d->field != FIELD_NONE) {
			struct slot *s = &d->fields[d->field];

			d->field = FIELD_NONE;
			if (kind == SLOT_STRING) {
				if (slot_set_string(s, str, len) < 0)
					goto oom;
			} else {
				slot_set_kind(s, kind);
			}
		}
		return 1;
	}
	if (d->depth == 0) {
		if (is_map)
			return 1;
		d->fail = d->binary ? "data is not an object" :
				      "event is not a JSON object";
		return 0;
	}
	if (d->depth == 1 && !d->binary && d->attr != ATTR_NONE) {
		struct slot *s = &d->attrs[d->attr];

		d->attr = ATTR_NONE;
		if (kind == SLOT_STRING) {
			if (slot_set_string(s, str, len) < 0)
				goto oom;
		} else {
			slot_set_kind(s, kind);
		}
	}
	return 1;
oom:
	d->fail = "out of memory";
	return 0;
}

static int cb_null(void *ctx)
{
	return on_value(ctx, SLOT_NULL, NULL, 0, 0);
}

static int cb_boolean(void *ctx, int v)
{
	(void)v;
	return on_value(ctx, SLOT_OTHER, NULL, 0, 0);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
	(void)s;
	(void)len;
	return on_value(ctx, SLOT_OTHER, NULL, 0, 0);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
	return on_value(ctx, SLOT_STRING, s, len, 0);
}

/* Before a container inside data opens: 1 (and d->fail set) when it would
 * nest data deeper than DATA_MAX_DEPTH. data's own members sit at depth
 * data_level, so data itself is container number 1. */
static int data_too_deep(struct decode *d)
{
	if (d->depth + 2 - d->data_level <= DATA_MAX_DEPTH)
		return 0;
	d->fail = "data nested too deeply";
	return 1;
}

static int cb_start_map(void *ctx)
{
	struct decode *d = ctx;
	int starts_data;

	starts_data = (d->binary && d->depth == 0) ||
		      (!d->binary && d->depth == 1 && !d->in_data &&
		       d->attr == ATTR_DATA);
	if (!on_value(d, SLOT_OTHER, NULL, 0, 1))
		return 0;
	if (starts_data) {
		d->in_data = 1;
		/* Just past the brace: yajl has consumed the token. */
		d->data_start = yajl_get_bytes_consumed(d->h) - 1;
	}
	if (d->in_data && data_too_deep(d))
		return 0;
	d->depth++;
	return 1;
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
	struct decode *d = ctx;
	int i;

	if (d->in_data) {
		if (d->depth == d->data_level) {
			d->field = FIELD_NONE;
			for (i = 0; i < FIELD_COUNT; i++) {
				if (strlen(field_names[i]) == len &&
				    memcmp(field_names[i], key, len) == 0)
					d->field = (enum field)i;
			}
		}
		return 1;
	}
	if (d->depth == 1 && !d->binary) {
		d->attr = ATTR_NONE;
		for (i = 0; i < ATTR_COUNT; i++) {
			if (strlen(attr_names[i]) == len &&
			    memcmp(attr_names[i], key, len) == 0)
				d->attr = (enum attr)i;
		}
		/* Two values for one attribute leave no sound way to choose. */
		if (d->attr != ATTR_NONE &&
		    d->attrs[d->attr].kind != SLOT_ABSENT) {
			snprintf(d->failbuf, sizeof(d->failbuf),
				 "duplicate attribute: %s", attr_names[d->attr]);
			d->fail = d->failbuf;
			return 0;
		}
	}
	return 1;
}

static int cb_end_map(void *ctx)
{
	struct decode *d = ctx;
	size_t at = yajl_get_bytes_consumed(d->h);

	d->depth--;
	if (d->depth == 0)
		d->end = at;
	/* The data object itself closed: record it as seen, and copy it. */
	if (d->in_data && d->depth == d->data_level - 1) {
		d->in_data = 0;
		d->attrs[ATTR_DATA].kind = SLOT_OTHER;
		buf_add_json_compact(&d->data, d->text + d->data_start, at - d->data_start);
	}
	return 1;
}

static int cb_start_array(void *ctx)
{
	struct decode *d = ctx;

	if (!on_value(d, SLOT_OTHER, NULL, 0, 0))
		return 0;
	if (d->in_data && data_too_deep(d))
		return 0;
	d->depth++;
	return 1;
}

static int cb_end_array(void *ctx)
{
	struct decode *d = ctx;

	d->depth--;
	return 1;
}

static const yajl_callbacks decode_callbacks = {
	cb_null, cb_boolean, NULL, NULL, cb_number, cb_string,
	cb_start_map, cb_map_key, cb_end_map, cb_start_array, cb_end_array,
};

static void decode_release(struct decode *d)
{
	int i;

	for (i = 0; i < ATTR_COUNT; i++)
		slot_release(&d->attrs[i]);
	for (i = 0; i < FIELD_COUNT; i++)
		slot_release(&d->fields[i]);
	buf_release(&d->data);
}

/* 1 when p (len bytes) is JSON whitespace only. */
static int only_space(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return 0;
	}
	return 1;
}

static int hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		unsigned char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	*out = v;
	return 0;
}

/*
 * yajl 2.1 decodes a "\uD800" escape with no low surrogate after it as "?",
 * and a lone low surrogate into bytes that are not UTF-8. Rewrites every
 * unpaired surrogate escape inside a string of p (len bytes) to "\ufffd",
 * the same length, so it reaches the receiver as U+FFFD like any other
 * invalid text. Returns a malloc'd copy when something was rewritten, else
 * NULL (also when out of memory: the value is then parsed as it is).
 */
static char *fix_lone_surrogates(const unsigned char *p, size_t len)
{
	char *copy = NULL;
	int in_string = 0;
	size_t i = 0;

	if (!memchr(p, '\\', len))
		return NULL;
	while (i < len) {
		unsigned hi, lo;

		if (p[i] == '"') {
			in_string = !in_string;
			i++;
			continue;
		}
		if (!in_string || p[i] != '\\' || i + 1 >= len) {
			i++;
			continue;
		}
		if (p[i + 1] != 'u' || i + 6 > len || hex4(p + i + 2, &hi) < 0) {
			i += 2;
			continue;
		}
		if (hi >= 0xd800 && hi <= 0xdbff && i + 12 <= len &&
		    p[i + 6] == '\\' && p[i + 7] == 'u' &&
		    hex4(p + i + 8, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
			i += 12;
			continue;
		}
		if (hi >= 0xd800 && hi <= 0xdfff) {
			if (!copy) {
				copy = malloc(len);
				if (!copy)
					return NULL;
				memcpy(copy, p, len);
			}
			memcpy(copy + i, "\\ufffd", 6);
		}
		i += 6;
	}
	return copy;
}

/* Runs the value through the parser. Returns 0, or -1 with err set. */
static int decode_json(struct decode *d, const void *value, size_t len,
		       char *err, size_t errlen)
{
	yajl_handle h;
	yajl_status st;
	char *fixed;

	h = yajl_alloc(&decode_callbacks, NULL, d);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->h = h;
	fixed = fix_lone_surrogates(value, len);
	d->text = fixed ? fixed : value;
	st = yajl_parse(h, (const unsigned char *)d->text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	yajl_free(h);
	free(fixed);
	d->h = NULL;
	d->text = NULL;
	/* yajl 2.1.0 ignores an unfinished token after a complete value
	 * ({...}"abc passes as JSON): only whitespace may follow it. */
	if (st == yajl_status_ok && !only_space((const char *)value + d->end,
						len - d->end))
		st = yajl_status_error;
	if (st == yajl_status_client_canceled) {
		snprintf(err, errlen, "%s", d->fail ? d->fail : "not JSON");
		return -1;
	}
	if (st != yajl_status_ok) {
		snprintf(err, errlen, "not JSON");
		return -1;
	}
	if (d->data.failed) {
		snprintf(err, errlen, "data too large");
		return -1;
	}
	return 0;
}

/* The ce_* header of that name, the last one when repeated (as
 * librdkafka's rd_kafka_header_get_last would pick). */
static const struct event_header *find_header(const struct event_header *h,
					      size_t n, const char *name)
{
	const struct event_header *found = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (h[i].name && strcmp(h[i].name, name) == 0)
			found = &h[i];
	}
	return found;
}

static int headers_to_attrs(struct decode *d, const struct event_header *h,
			    size_t n, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < ATTR_DATA; i++) {
		const struct event_header *hd = find_header(h, n, attr_headers[i]);

		if (!hd)
			continue;
		if (!hd->value) {
			slot_set_kind(&d->attrs[i], SLOT_NULL);
		} else if (slot_set_string(&d->attrs[i], hd->value,
					   hd->value_len) < 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* Checks that every required attribute is a non-empty string. */
static int check_attrs(const struct decode *d, char *err, size_t errlen)
{
	const char *what = d->binary ? "header" : "attribute";
	int i;

	for (i = 0; i < ATTR_DATA; i++) {
		const struct slot *s = &d->attrs[i];
		const char *name = d->binary ? attr_headers[i] : attr_names[i];

		if (s->kind == SLOT_ABSENT) {
			snprintf(err, errlen, "missing %s: %s", what, name);
			return -1;
		}
		if (s->kind == SLOT_NULL) {
			snprintf(err, errlen, "%s is null: %s", what, name);
			return -1;
		}
		if (s->kind != SLOT_STRING) {
			snprintf(err, errlen, "%s is not a string: %s", what, name);
			return -1;
		}
		if (s->len == 0) {
			snprintf(err, errlen, "empty %s: %s", what, name);
			return -1;
		}
		if (memchr(s->str, '\0', s->len)) {
			snprintf(err, errlen, "%s contains a NUL byte: %s", what,
				 name);
			return -1;
		}
		/* Structured mode gets this from yajl; a header is raw bytes.
		 * Refused, not repaired: an attribute such as the id feeds
		 * webhook-id, and a silently changed one would not be the
		 * producer's. */
		if (!buf_utf8_valid(s->str, s->len)) {
			snprintf(err, errlen, "%s is not valid UTF-8: %s", what,
				 name);
			return -1;
		}
		if (i == ATTR_SPECVERSION && strcmp(s->str, "1.0") != 0) {
			set_reason(err, errlen, "unsupported specversion: ", s->str,
				   s->len);
			return -1;
		}
	}
	return 0;
}

/* promotionId (required) and, when with_dates, startDate/endDate. */
static int read_promotion(struct decode *d, struct event *ev, int with_dates,
			  char *err, size_t errlen)
{
	struct slot *id = &d->fields[FIELD_PROMOTION_ID];
	int f;

	if (id->kind == SLOT_ABSENT) {
		snprintf(err, errlen, "missing data.promotionId");
		return -1;
	}
	if (id->kind != SLOT_STRING) {
		snprintf(err, errlen, "data.promotionId is not a string");
		return -1;
	}
	if (id->len == 0) {
		snprintf(err, errlen, "empty data.promotionId");
		return -1;
	}
	if (memchr(id->str, '\0', id->len)) {
		snprintf(err, errlen, "data.promotionId contains a NUL byte");
		return -1;
	}
	if (!with_dates)
		goto take;
	for (f = FIELD_START_DATE; f <= FIELD_END_DATE; f++) {
		struct slot *s = &d->fields[f];
		int64_t ms;
		char what[40];

		if (s->kind == SLOT_ABSENT || s->kind == SLOT_NULL)
			continue;
		if (s->kind != SLOT_STRING) {
			snprintf(err, errlen, "data.%s is not a string",
				 field_names[f]);
			return -1;
		}
		if (rfc3339_parse(s->str, s->len, &ms) < 0) {
			snprintf(what, sizeof(what), "bad data.%s: ", field_names[f]);
			set_reason(err, errlen, what, s->str, s->len);
			return -1;
		}
		if (f == FIELD_START_DATE) {
			ev->has_start = 1;
			ev->start_ms = ms;
		} else {
			ev->has_end = 1;
			ev->end_ms = ms;
		}
	}
take:
	ev->promotion_id = id->str;
	id->str = NULL;
	id->kind = SLOT_ABSENT;
	return 0;
}

/* Moves the decoded parts into ev once everything has been checked that
 * does not depend on data. */
static int build_event(struct decode *d, struct event *ev, char *err,
		       size_t errlen)
{
	struct slot *type = &d->attrs[ATTR_TYPE];
	struct slot *when = &d->attrs[ATTR_TIME];
	enum event_type t;
	int rc = 0;

	if (check_attrs(d, err, errlen) < 0)
		return -1;
	if (event_type_parse(type->str, type->len, &t) < 0) {
		set_reason(err, errlen, "unknown event type: ", type->str,
			   type->len);
		return -1;
	}
	if (event_type_is_derived(t)) {
		snprintf(err, errlen, "derived event type is not accepted: %s",
			 event_type_name(t));
		return -1;
	}
	if (rfc3339_parse(when->str, when->len, &ev->time_ms) < 0) {
		set_reason(err, errlen, "bad time: ", when->str, when->len);
		return -1;
	}
	if (d->attrs[ATTR_DATA].kind == SLOT_ABSENT) {
		snprintf(err, errlen, "missing attribute: data");
		return -1;
	}
	if (d->data.len == 0) {
		snprintf(err, errlen, "data is not an object");
		return -1;
	}
	ev->type = t;
	if (t == EVENT_PROMOTION_CREATED || t == EVENT_PROMOTION_UPDATED)
		rc = read_promotion(d, ev, 1, err, errlen);
	else if (t == EVENT_PROMOTION_DELETED)
		rc = read_promotion(d, ev, 0, err, errlen);
	if (rc < 0)
		return -1;

	ev->id = d->attrs[ATTR_ID].str;
	d->attrs[ATTR_ID].str = NULL;
	ev->source = d->attrs[ATTR_SOURCE].str;
	d->attrs[ATTR_SOURCE].str = NULL;
	ev->time = when->str;
	when->str = NULL;
	ev->company_id = d->attrs[ATTR_COMPANYID].str;
	d->attrs[ATTR_COMPANYID].str = NULL;
	ev->data = buf_detach(&d->data, &ev->data_len);
	if (!ev->data) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void event_init(struct event *ev)
{
	memset(ev, 0, sizeof(*ev));
}

int event_decode(const void *value, size_t value_len,
		 const struct event_header *headers, size_t nheaders,
		 struct event *ev, char *err, size_t errlen)
{
	struct decode d;
	int rc = -1;

	event_init(ev);
	memset(&d, 0, sizeof(d));
	buf_init(&d.data, 0);
	d.attr = ATTR_NONE;
	d.field = FIELD_NONE;
	/* The CloudEvents Kafka binding: binary mode carries ce_specversion
	 * as a header, structured mode never does. */
	d.binary = find_header(headers, nheaders, "ce_specversion") != NULL;
	d.data_level = d.binary ? 1 : 2;

	if (!value) {
		snprintf(err, errlen, "empty value (tombstone)");
		goto out;
	}
	if (value_len == 0) {
		snprintf(err, errlen, "empty value");
		goto out;
	}
	if (d.binary && headers_to_attrs(&d, headers, nheaders, err, errlen) < 0)
		goto out;
	if (decode_json(&d, value, value_len, err, errlen) < 0)
		goto out;
	if (build_event(&d, ev, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		event_release(ev);
	decode_release(&d);
	return rc;
}

void event_release(struct event *ev)
{
	free(ev->id);
	free(ev->source);
	free(ev->time);
	free(ev->company_id);
	free(ev->data);
	free(ev->promotion_id);
	event_init(ev);
}
