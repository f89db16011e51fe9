/*
 * render: the JSON body POSTed to a webhook (pipeline stage 4, pure),
 * contract section 4:
 *
 *   {"id":...,"event":...,"companyId":...,"webhookId":...,
 *    "occurredAt":...,"data":{...}}
 *
 * compact and in that member order. data normally comes from event decode,
 * already compact, and is copied as it is. For the derived period events the
 * webhook's notificationPeriod and notificationPeriodValue are merged into
 * data, which needs one pass of yajl's callback parser over it.
 */
#include "promo_webhooks/render.h"

#include <inttypes.h>
#include <string.h>

#include <yajl/yajl_parse.h>

static const char *const period_members[] = {
	"notificationPeriod", "notificationPeriodValue",
};

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
	size_t i;

	if (m->skip)
		return 1;
	if (m->depth == 1) {
		for (i = 0; i < sizeof(period_members) / sizeof(period_members[0]);
		     i++) {
			if (strlen(period_members[i]) == len &&
			    memcmp(period_members[i], key, len) == 0) {
				m->skip = 1;
				return 1;
			}
		}
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

static int merge_period(const struct render_input *in, const char *period,
			struct buf *out)
{
	struct merge m = { out, period, in->period_value, 0, 0 };
	yajl_handle h;
	yajl_status st;

	h = yajl_alloc(&merge_callbacks, NULL, &m);
	if (!h)
		return -1;
	st = yajl_parse(h, (const unsigned char *)in->data, in->data_len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	yajl_free(h);
	return st == yajl_status_ok ? 0 : -1;
}

static void add_member(struct buf *out, const char *name, const char *value)
{
	buf_adds(out, name);
	buf_add_json_string(out, value, strlen(value));
}

int render_json(const struct render_input *in, struct buf *out)
{
	const char *event = event_type_name(in->event);
	const char *period = NULL;
	const char *data = in->data;
	size_t data_len = in->data_len;

	if (!event || !in->message_id || !in->company_id || !in->webhook_id ||
	    !in->occurred_at || !data)
		return -1;
	if (in->period != PERIOD_NONE) {
		period = period_unit_name(in->period);
		if (!period)
			return -1;
	}
	trim(&data, &data_len);
	if (data_len < 2 || data[0] != '{' || data[data_len - 1] != '}')
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
