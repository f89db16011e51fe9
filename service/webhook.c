/*
 * webhook: the webhook and company-settings value types, their JSON forms
 * and the admin API's validation rules (contract section 7). Pure: no I/O.
 * See include/promo_webhooks/webhook.h.
 *
 * Two JSON forms exist. The API view is what clients see (times as RFC 3339,
 * hasSecret instead of the secret). The stored form is what the store keeps
 * in Redis (times as Unix milliseconds, the secret, the revision); it is
 * also rewritten by Lua scripts (cjson), so the parser accepts any member
 * order, ignores members it does not know and takes numbers written as
 * doubles.
 *
 * Size: the webhook value type in its three forms (request, API view,
 * stored) and the admin API's validation rules for each field.
 */
#include "promo_webhooks/webhook.h"
#include "promo_webhooks/rfc3339.h"
#include "promo_webhooks/redact.h"
#include "promo_webhooks/deliver.h"
#include "promo_webhooks/sign.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yajl/yajl_tree.h>

#define MINUTES_PER_DAY 1440
/* Largest notification period: 366 days. */
#define MAX_PERIOD_MINUTES ((int64_t)366 * MINUTES_PER_DAY)
#define MAX_EMAIL_LEN 254
#define MAX_COMPANY_ID_LEN 128

const char *period_unit_name(enum period_unit p)
{
	switch (p) {
	case PERIOD_MINUTES: return "Minutes";
	case PERIOD_HOURS: return "Hours";
	case PERIOD_DAYS: return "Days";
	case PERIOD_NONE: break;
	}
	return NULL;
}

const char *payload_type_name(enum payload_type p)
{
	switch (p) {
	case PAYLOAD_JSON: return "Json";
	case PAYLOAD_XML: return "Xml";
	case PAYLOAD_DEFAULT: break;
	}
	return NULL;
}

int period_unit_parse(const char *s, enum period_unit *out)
{
	enum period_unit p;

	for (p = PERIOD_MINUTES; p <= PERIOD_DAYS; p++) {
		if (strcmp(s, period_unit_name(p)) == 0) {
			*out = p;
			return 0;
		}
	}
	return -1;
}

int payload_type_parse(const char *s, enum payload_type *out)
{
	if (strcmp(s, "Json") == 0) {
		*out = PAYLOAD_JSON;
		return 0;
	}
	if (strcmp(s, "Xml") == 0) {
		*out = PAYLOAD_XML;
		return 0;
	}
	return -1;
}

int64_t period_unit_minutes(enum period_unit p)
{
	switch (p) {
	case PERIOD_MINUTES: return 1;
	case PERIOD_HOURS: return 60;
	case PERIOD_DAYS: return MINUTES_PER_DAY;
	case PERIOD_NONE: break;
	}
	return 0;
}

int webhook_id_valid(const char *s)
{
	size_t i;

	for (i = 0; i < WEBHOOK_ID_LEN; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return s[WEBHOOK_ID_LEN] == '\0';
}

int webhook_company_id_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > MAX_COMPANY_ID_LEN)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		/* Visible ASCII only, and never '/': the id is a path segment
		 * of the API and part of Redis key names. */
		if (c <= 0x20 || c >= 0x7f || c == '/')
			return 0;
	}
	return 1;
}

/* ---- value type lifecycle ---- */

void webhook_init(struct webhook *wh)
{
	memset(wh, 0, sizeof(*wh));
	wh->event = EVENT_PROMOTION_CREATED;
	wh->enabled = 1;
}

void webhook_release(struct webhook *wh)
{
	free(wh->id);
	free(wh->company_id);
	free(wh->target);
	free(wh->secret);
	free(wh->disabled_reason);
	webhook_init(wh);
}

/* strdup that keeps NULL as NULL; *ok is cleared when out of memory. */
static char *dup_or_null(const char *s, int *ok)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		*ok = 0;
	return p;
}

int webhook_copy(struct webhook *dst, const struct webhook *src)
{
	int ok = 1;

	*dst = *src;
	dst->id = dup_or_null(src->id, &ok);
	dst->company_id = dup_or_null(src->company_id, &ok);
	dst->target = dup_or_null(src->target, &ok);
	dst->secret = dup_or_null(src->secret, &ok);
	dst->disabled_reason = dup_or_null(src->disabled_reason, &ok);
	if (!ok) {
		webhook_release(dst);
		return -1;
	}
	return 0;
}

void company_settings_init(struct company_settings *s)
{
	s->notification_email = NULL;
	s->payload_type = PAYLOAD_JSON;
}

void company_settings_release(struct company_settings *s)
{
	free(s->notification_email);
	company_settings_init(s);
}

int company_settings_copy(struct company_settings *dst,
			  const struct company_settings *src)
{
	int ok = 1;

	dst->payload_type = src->payload_type;
	dst->notification_email = dup_or_null(src->notification_email, &ok);
	return ok ? 0 : -1;
}

/* ---- errors ---- */

static void set_error(struct webhook_error *err, const char *code,
		      const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void set_error(struct webhook_error *err, const char *code,
		      const char *field, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	snprintf(err->code, sizeof(err->code), "%s", code);
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* ---- JSON input helpers ---- */

/*
 * yajl_tree hands strings over NUL-terminated, so a "\u0000" escape would
 * silently cut a string short. Finds one outside of a tree walk: returns 1
 * when some string in the document contains an escaped NUL.
 */
static int json_has_escaped_nul(const char *p, size_t len)
{
	size_t i;
	int in_string = 0;

	for (i = 0; i < len; i++) {
		if (!in_string) {
			if (p[i] == '"')
				in_string = 1;
			continue;
		}
		if (p[i] == '"') {
			in_string = 0;
		} else if (p[i] == '\\' && i + 1 < len) {
			if (p[i + 1] == 'u' && i + 5 < len &&
			    memcmp(p + i + 2, "0000", 4) == 0)
				return 1;
			i++; /* skip the escaped character */
		}
	}
	return 0;
}

/* The deepest nesting accepted in a parsed document. Every document here
 * is a flat object; the limit exists because yajl_tree_free recurses once
 * per level, so a 1 MiB body of '[' would overflow the stack. */
#define JSON_MAX_DEPTH 32

/* 1 when the arrays and objects of p (len bytes, not yet known to be JSON)
 * nest deeper than JSON_MAX_DEPTH. */
static int json_too_deep(const char *p, size_t len)
{
	size_t i;
	int in_string = 0, depth = 0;

	for (i = 0; i < len; i++) {
		if (in_string) {
			if (p[i] == '"')
				in_string = 0;
			else if (p[i] == '\\')
				i++; /* skip the escaped character */
			continue;
		}
		if (p[i] == '"') {
			in_string = 1;
		} else if (p[i] == '[' || p[i] == '{') {
			if (++depth > JSON_MAX_DEPTH)
				return 1;
		} else if ((p[i] == ']' || p[i] == '}') && depth > 0) {
			depth--;
		}
	}
	return 0;
}

/*
 * Parses body (len bytes, not NUL-terminated) into a tree. Returns NULL and
 * fills err when it is not JSON.
 */
static yajl_val parse_body(const char *body, size_t len,
			   struct webhook_error *err)
{
	char ebuf[128];
	char *copy;
	yajl_val root;

	if (!body || len == 0) {
		set_error(err, "malformed_json", NULL, "the request body is empty");
		return NULL;
	}
	if (memchr(body, '\0', len)) {
		set_error(err, "malformed_json", NULL,
			  "the request body contains a NUL byte");
		return NULL;
	}
	if (json_too_deep(body, len)) {
		set_error(err, "validation_failed", NULL,
			  "the request body is nested too deeply");
		return NULL;
	}
	copy = malloc(len + 1);
	if (!copy) {
		set_error(err, "internal", NULL, "out of memory");
		return NULL;
	}
	memcpy(copy, body, len);
	copy[len] = '\0';
	/* The parser's own message quotes the input across lines; a short
	 * fixed message serves clients better. */
	root = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
	if (!root) {
		free(copy);
		set_error(err, "malformed_json", NULL,
			  "the request body is not valid JSON");
		return NULL;
	}
	if (json_has_escaped_nul(copy, len)) {
		free(copy);
		yajl_tree_free(root);
		set_error(err, "validation_failed", NULL,
			  "strings must not contain NUL characters");
		return NULL;
	}
	free(copy);
	if (!YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		set_error(err, "validation_failed", NULL,
			  "the request body must be a JSON object");
		return NULL;
	}
	return root;
}

/* A JSON whole number: an integer literal, or a double with no fraction
 * (2.0, 2e0) within the exactly representable range. */
static int json_whole(yajl_val v, int64_t *out)
{
	const char *r;
	size_t i;
	double d;

	if (!YAJL_IS_NUMBER(v))
		return -1;
	r = YAJL_GET_NUMBER(v);
	i = (r[0] == '-') ? 1 : 0;
	if (r[i] != '\0' && strspn(r + i, "0123456789") == strlen(r + i)) {
		long long n;
		char *end;

		errno = 0;
		n = strtoll(r, &end, 10);
		if (errno || *end)
			return -1;
		*out = n;
		return 0;
	}
	if (!YAJL_IS_DOUBLE(v))
		return -1;
	d = YAJL_GET_DOUBLE(v);
	if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
		return -1;
	*out = (int64_t)d;
	return 0;
}

/* ---- target URL check ---- */

static int is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986 unreserved and sub-delims: the characters a host name, user
 * info or path may carry literally (besides ':' '@' '/' '?' '#' '[' ']'). */
static int is_uri_plain(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || strchr("-._~!$&'()*+,;=", c);
}

/*
 * The target check. The URL grammar is the deliverer's (curl's URL API,
 * deliver_target_check), so the API accepts exactly what a delivery can
 * parse. On top of it the API is stricter about the text than curl, which
 * repairs what it can: only URI characters (no spaces, controls, raw
 * non-ASCII, stray '%' or characters that must be percent-encoded), the
 * scheme followed by "://" and a host (curl reads "https:/x" and
 * "https:///x" as hosts), and no empty port ("host:/").
 * Returns NULL when fine, else why not.
 */
static const char *target_check(const char *url, size_t len)
{
	const unsigned char *p = (const unsigned char *)url;
	const unsigned char *end = p + len, *auth, *auth_end, *q;
	size_t slen;

	if (len > WEBHOOK_TARGET_MAX)
		return "must be at most 2048 bytes";
	for (q = p; q < end; q++) {
		if (*q <= 0x20 || *q >= 0x7f)
			return "must not contain spaces, control or non-ASCII characters";
		if (*q == '%') {
			if (q + 2 >= end || !is_hex(q[1]) || !is_hex(q[2]))
				return "has a malformed percent-encoding";
			q += 2;
		} else if (!is_uri_plain(*q) && !strchr(":@/?#[]", *q)) {
			return "contains a character that must be percent-encoded";
		}
	}
	if (len >= 8 && strncasecmp(url, "https://", 8) == 0)
		slen = 8;
	else if (len >= 7 && strncasecmp(url, "http://", 7) == 0)
		slen = 7;
	else
		return "must be an absolute http or https URL";
	auth = p + slen;
	auth_end = auth;
	while (auth_end < end && *auth_end != '/' && *auth_end != '?' &&
	       *auth_end != '#')
		auth_end++;
	if (auth_end == auth)
		return "must name a host";
	/* User info is refused: a password in a URL would be shown wherever
	 * the target is (responses, notices, logs), and the signing secret is
	 * the way to authenticate deliveries. Targets stored before this rule
	 * are shown redacted (redact_userinfo) and still delivered as
	 * stored. */
	if (memchr(auth, '@', (size_t)(auth_end - auth)))
		return "must not contain user info (user:password@); authenticate "
		       "deliveries with the webhook's signing secret instead";
	if (auth_end[-1] == ':')
		return "has an invalid port";
	return deliver_target_check(url);
}

/* ---- webhook request bodies ---- */

enum wh_field {
	F_EVENT,
	F_TARGET,
	F_ENABLED,
	F_PERIOD,
	F_PERIOD_VALUE,
	F_PAYLOAD,
	F_SECRET,
	F_COUNT
};

static const char *const wh_field_names[F_COUNT] = {
	"event", "target", "enabled", "notificationPeriod",
	"notificationPeriodValue", "payloadDataType", "secret",
};

/*
 * Members of the API view that a client may not write. A request naming one
 * is refused (validation_failed, field = that name) rather than ignored:
 * silently dropping e.g. a changed "companyId" would make the client believe
 * it moved the webhook. Being explicit also keeps "unknown fields are
 * refused" honest for every name that is not writable.
 */
static const char *const wh_read_only[] = {
	"id", "companyId", "hasSecret", "createdAt", "updatedAt",
	"disabledAt", "disabledReason",
};

static int wh_field_lookup(const char *name)
{
	int f;

	for (f = 0; f < F_COUNT; f++) {
		if (strcmp(name, wh_field_names[f]) == 0)
			return f;
	}
	return -1;
}

static int is_read_only(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(wh_read_only) / sizeof(wh_read_only[0]); i++) {
		if (strcmp(name, wh_read_only[i]) == 0)
			return 1;
	}
	return 0;
}

/* Copies a field name into err->field; names longer than the field buffer
 * are cut, which is fine for a diagnostic. */
static void refuse_name(struct webhook_error *err, const char *name,
			const char *why)
{
	set_error(err, "validation_failed", name, "\"%.64s\" %s", name, why);
}

/* Replaces *slot with a copy of s (or NULL). Returns -1 when out of memory. */
static int set_str(char **slot, const char *s)
{
	char *p = NULL;

	if (s) {
		p = strdup(s);
		if (!p)
			return -1;
	}
	free(*slot);
	*slot = p;
	return 0;
}

/* Applies one writable member to nw. Returns 0, or -1 with err filled. */
static int apply_field(struct webhook *nw, enum wh_field f, yajl_val v,
		       struct webhook_error *err)
{
	const char *name = wh_field_names[f];
	const char *s, *why;
	int64_t n;

	switch (f) {
	case F_EVENT:
		s = YAJL_GET_STRING(v);
		if (!s) {
			refuse_name(err, name, "must be a string naming an event type");
			return -1;
		}
		if (event_type_parse(s, strlen(s), &nw->event) < 0) {
			refuse_name(err, name, "is not a known event type");
			return -1;
		}
		return 0;
	case F_TARGET:
		s = YAJL_GET_STRING(v);
		if (!s) {
			refuse_name(err, name, "must be a string (an http or https URL)");
			return -1;
		}
		why = target_check(s, strlen(s));
		if (why) {
			refuse_name(err, name, why);
			return -1;
		}
		if (set_str(&nw->target, s) < 0)
			goto oom;
		return 0;
	case F_ENABLED:
		if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
			refuse_name(err, name, "must be true or false");
			return -1;
		}
		nw->enabled = YAJL_IS_TRUE(v);
		return 0;
	case F_PERIOD:
		if (YAJL_IS_NULL(v)) {
			nw->period = PERIOD_NONE;
			return 0;
		}
		s = YAJL_GET_STRING(v);
		if (!s || period_unit_parse(s, &nw->period) < 0) {
			refuse_name(err, name, "must be \"Minutes\", \"Hours\", \"Days\" or null");
			return -1;
		}
		return 0;
	case F_PERIOD_VALUE:
		if (YAJL_IS_NULL(v)) {
			nw->period_value = 0;
			return 0;
		}
		if (json_whole(v, &n) < 0 || n < 1) {
			refuse_name(err, name, "must be a whole number from 1, or null");
			return -1;
		}
		/* Anything beyond 366 days is refused later; clamping here
		 * keeps the product below from overflowing. */
		nw->period_value = n > MAX_PERIOD_MINUTES ? MAX_PERIOD_MINUTES + 1 : n;
		return 0;
	case F_PAYLOAD:
		if (YAJL_IS_NULL(v)) {
			nw->payload_type = PAYLOAD_DEFAULT;
			return 0;
		}
		s = YAJL_GET_STRING(v);
		if (!s || payload_type_parse(s, &nw->payload_type) < 0) {
			refuse_name(err, name, "must be \"Json\", \"Xml\" or null");
			return -1;
		}
		return 0;
	case F_SECRET:
		if (YAJL_IS_NULL(v)) {
			free(nw->secret);
			nw->secret = NULL;
			return 0;
		}
		s = YAJL_GET_STRING(v);
		/* Never echo the value: it is a secret even when malformed. */
		if (!s || sign_secret_decode(s, NULL, NULL) < 0) {
			refuse_name(err, name,
				    "must be null or \"whsec_\" followed by base64 of 24 to 64 bytes");
			return -1;
		}
		if (set_str(&nw->secret, s) < 0)
			goto oom;
		return 0;
	case F_COUNT:
		break;
	}
	return -1;
oom:
	set_error(err, "internal", NULL, "out of memory");
	return -1;
}

/* The rules that tie fields together, checked on the merged result. */
static int check_period(const struct webhook *nw, struct webhook_error *err)
{
	const char *ev = event_type_name(nw->event);

	if (event_type_is_derived(nw->event)) {
		if (nw->period == PERIOD_NONE) {
			set_error(err, "validation_failed", "notificationPeriod",
				  "%s requires notificationPeriod (Minutes, Hours or Days)", ev);
			return -1;
		}
		if (nw->period_value < 1) {
			set_error(err, "validation_failed", "notificationPeriodValue",
				  "%s requires notificationPeriodValue (a whole number from 1)", ev);
			return -1;
		}
		if (nw->period_value * period_unit_minutes(nw->period) > MAX_PERIOD_MINUTES) {
			set_error(err, "validation_failed", "notificationPeriodValue",
				  "the notification period must be at most 366 days");
			return -1;
		}
		return 0;
	}
	if (nw->period != PERIOD_NONE) {
		set_error(err, "validation_failed", "notificationPeriod",
			  "%s takes no notification period: give null or leave it out", ev);
		return -1;
	}
	if (nw->period_value != 0) {
		set_error(err, "validation_failed", "notificationPeriodValue",
			  "%s takes no notification period: give null or leave it out", ev);
		return -1;
	}
	return 0;
}

int webhook_disable(struct webhook *wh, int64_t at_ms, const char *reason)
{
	if (set_str(&wh->disabled_reason, reason) < 0)
		return -1;
	wh->enabled = 0;
	wh->disabled_at_ms = at_ms;
	if (wh->updated_at_ms < at_ms)
		wh->updated_at_ms = at_ms;
	return 0;
}

void webhook_format_window(int64_t window_ms, char *out, size_t outlen)
{
	if (window_ms % 1000 == 0)
		snprintf(out, outlen, "%lld s", (long long)(window_ms / 1000));
	else
		snprintf(out, outlen, "%lld ms", (long long)window_ms);
}

void webhook_failure_reason(long count, int64_t window_ms, char *out,
			    size_t outlen)
{
	char span[32];

	webhook_format_window(window_ms, span, sizeof(span));
	snprintf(out, outlen, "%ld failed deliveries within %s", count, span);
}

int webhook_apply_json(struct webhook *wh, enum webhook_write mode,
		       const char *body, size_t len, int64_t now_ms,
		       int *reenabled, struct webhook_error *err)
{
	static const char reason_api[] = "disabled through the admin API";
	int seen[F_COUNT] = { 0 };
	struct webhook nw;
	yajl_val root;
	size_t i;
	int was_enabled = wh->enabled;
	int rc = -1;

	if (reenabled)
		*reenabled = 0;
	root = parse_body(body, len, err);
	if (!root)
		return -1;
	if (webhook_copy(&nw, wh) < 0) {
		yajl_tree_free(root);
		set_error(err, "internal", NULL, "out of memory");
		return -1;
	}
	if (mode != WEBHOOK_PATCH) {
		/* CREATE and REPLACE describe the whole webhook: what is not
		 * given takes its default. The secret is the exception on
		 * REPLACE: it is write-only, so a client that GETs, edits and
		 * PUTs back never has it; omitting it keeps it and only an
		 * explicit null removes it. */
		nw.enabled = 1;
		nw.period = PERIOD_NONE;
		nw.period_value = 0;
		nw.payload_type = PAYLOAD_DEFAULT;
		if (mode == WEBHOOK_CREATE) {
			free(nw.secret);
			nw.secret = NULL;
		}
	}

	for (i = 0; i < root->u.object.len; i++) {
		const char *name = root->u.object.keys[i];
		int f = wh_field_lookup(name);

		if (f < 0) {
			refuse_name(err, name, is_read_only(name) ?
				    "is read-only" : "is not a known field");
			goto out;
		}
		if (seen[f]) {
			refuse_name(err, name, "is given more than once");
			goto out;
		}
		seen[f] = 1;
		if (apply_field(&nw, (enum wh_field)f, root->u.object.values[i], err) < 0)
			goto out;
	}
	if (mode != WEBHOOK_PATCH) {
		if (!seen[F_EVENT]) {
			set_error(err, "validation_failed", "event", "\"event\" is required");
			goto out;
		}
		if (!seen[F_TARGET]) {
			set_error(err, "validation_failed", "target", "\"target\" is required");
			goto out;
		}
	}
	if (check_period(&nw, err) < 0)
		goto out;

	if (nw.enabled && (!was_enabled || mode == WEBHOOK_CREATE)) {
		free(nw.disabled_reason);
		nw.disabled_reason = NULL;
		nw.disabled_at_ms = 0;
		if (!was_enabled && mode != WEBHOOK_CREATE && reenabled)
			*reenabled = 1;
	} else if (!nw.enabled && (was_enabled || mode == WEBHOOK_CREATE)) {
		/* Switched off by the client: record when and why, so the
		 * webhook reads the same as one the failure rule disabled. */
		if (webhook_disable(&nw, now_ms, reason_api) < 0) {
			set_error(err, "internal", NULL, "out of memory");
			goto out;
		}
	}
	nw.updated_at_ms = now_ms;
	if (mode == WEBHOOK_CREATE)
		nw.created_at_ms = now_ms;

	webhook_release(wh);
	*wh = nw;
	webhook_init(&nw);
	rc = 0;
out:
	webhook_release(&nw);
	yajl_tree_free(root);
	return rc;
}

/* ---- JSON output ---- */

static void add_key(struct buf *out, const char *key)
{
	buf_add_json_string(out, key, strlen(key));
	buf_addc(out, ':');
}

static void add_str_or_null(struct buf *out, const char *s)
{
	if (s)
		buf_add_json_string(out, s, strlen(s));
	else
		buf_adds(out, "null");
}

static void add_time_or_null(struct buf *out, int64_t ms)
{
	char ts[32];

	if (ms == 0) {
		buf_adds(out, "null");
		return;
	}
	rfc3339_format(ms, ts, sizeof(ts));
	buf_add_json_string(out, ts, strlen(ts));
}

/* The members the two forms share, in the contract's order; the API view
 * shows the target with any user info redacted. */
static void add_common(const struct webhook *wh, struct buf *out, int view)
{
	add_key(out, "id");
	add_str_or_null(out, wh->id);
	buf_addc(out, ',');
	add_key(out, "companyId");
	add_str_or_null(out, wh->company_id);
	buf_addc(out, ',');
	add_key(out, "event");
	add_str_or_null(out, event_type_name(wh->event));
	buf_addc(out, ',');
	add_key(out, "target");
	if (view && wh->target) {
		struct buf shown;

		buf_init(&shown, 0);
		redact_userinfo(wh->target, strlen(wh->target), &shown);
		if (shown.failed)
			out->failed = 1;
		buf_add_json_string(out, buf_str(&shown), shown.len);
		buf_release(&shown);
	} else {
		add_str_or_null(out, wh->target);
	}
	buf_addc(out, ',');
	add_key(out, "enabled");
	buf_adds(out, wh->enabled ? "true" : "false");
	buf_addc(out, ',');
	add_key(out, "notificationPeriod");
	add_str_or_null(out, period_unit_name(wh->period));
	buf_addc(out, ',');
	add_key(out, "notificationPeriodValue");
	if (wh->period_value > 0)
		buf_addf(out, "%lld", (long long)wh->period_value);
	else
		buf_adds(out, "null");
	buf_addc(out, ',');
	add_key(out, "payloadDataType");
	add_str_or_null(out, payload_type_name(wh->payload_type));
}

int webhook_to_json(const struct webhook *wh, struct buf *out)
{
	buf_addc(out, '{');
	add_common(wh, out, 1);
	buf_addc(out, ',');
	add_key(out, "hasSecret");
	buf_adds(out, wh->secret ? "true" : "false");
	buf_addc(out, ',');
	add_key(out, "createdAt");
	add_time_or_null(out, wh->created_at_ms);
	buf_addc(out, ',');
	add_key(out, "updatedAt");
	add_time_or_null(out, wh->updated_at_ms);
	buf_addc(out, ',');
	add_key(out, "disabledAt");
	add_time_or_null(out, wh->disabled_at_ms);
	buf_addc(out, ',');
	add_key(out, "disabledReason");
	add_str_or_null(out, wh->disabled_reason);
	return buf_addc(out, '}');
}

int webhook_to_storage(const struct webhook *wh, struct buf *out)
{
	buf_addc(out, '{');
	add_common(wh, out, 0);
	buf_addc(out, ',');
	add_key(out, "secret");
	add_str_or_null(out, wh->secret);
	buf_addf(out, ",\"createdAt\":%lld,\"updatedAt\":%lld,\"disabledAt\":",
		 (long long)wh->created_at_ms, (long long)wh->updated_at_ms);
	if (wh->disabled_at_ms)
		buf_addf(out, "%lld", (long long)wh->disabled_at_ms);
	else
		buf_adds(out, "null");
	buf_addc(out, ',');
	add_key(out, "disabledReason");
	add_str_or_null(out, wh->disabled_reason);
	buf_addf(out, ",\"revision\":%lld", (long long)wh->revision);
	return buf_addc(out, '}');
}

/* Parses a stored document into a tree, without the request-oriented
 * messages of parse_body. */
static yajl_val parse_stored(const char *json, size_t len)
{
	char *copy;
	yajl_val root;

	if (!json || len == 0 || memchr(json, '\0', len) ||
	    json_too_deep(json, len))
		return NULL;
	copy = malloc(len + 1);
	if (!copy)
		return NULL;
	memcpy(copy, json, len);
	copy[len] = '\0';
	root = yajl_tree_parse(copy, NULL, 0);
	free(copy);
	if (root && !YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		root = NULL;
	}
	return root;
}

/* A stored string member: NULL when null or absent; -1 for another type. */
static int stored_str(yajl_val v, char **out)
{
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_STRING(v))
		return -1;
	return set_str(out, YAJL_GET_STRING(v));
}

static int stored_int(yajl_val v, int64_t *out)
{
	if (!v || YAJL_IS_NULL(v)) {
		*out = 0;
		return 0;
	}
	return json_whole(v, out);
}

int webhook_from_storage(struct webhook *wh, const char *json, size_t len)
{
	struct webhook nw;
	yajl_val root;
	size_t i;
	int rc = -1, has_event = 0;

	webhook_init(&nw);
	root = parse_stored(json, len);
	if (!root)
		return -1;
	for (i = 0; i < root->u.object.len; i++) {
		const char *k = root->u.object.keys[i];
		yajl_val v = root->u.object.values[i];
		const char *s = YAJL_GET_STRING(v);

		if (strcmp(k, "id") == 0) {
			if (stored_str(v, &nw.id) < 0)
				goto out;
		} else if (strcmp(k, "companyId") == 0) {
			if (stored_str(v, &nw.company_id) < 0)
				goto out;
		} else if (strcmp(k, "event") == 0) {
			if (!s || event_type_parse(s, strlen(s), &nw.event) < 0)
				goto out;
			has_event = 1;
		} else if (strcmp(k, "target") == 0) {
			if (stored_str(v, &nw.target) < 0)
				goto out;
		} else if (strcmp(k, "enabled") == 0) {
			if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
				goto out;
			nw.enabled = YAJL_IS_TRUE(v);
		} else if (strcmp(k, "notificationPeriod") == 0) {
			nw.period = PERIOD_NONE;
			if (s && period_unit_parse(s, &nw.period) < 0)
				goto out;
		} else if (strcmp(k, "notificationPeriodValue") == 0) {
			if (stored_int(v, &nw.period_value) < 0)
				goto out;
		} else if (strcmp(k, "payloadDataType") == 0) {
			nw.payload_type = PAYLOAD_DEFAULT;
			if (s && payload_type_parse(s, &nw.payload_type) < 0)
				goto out;
		} else if (strcmp(k, "secret") == 0) {
			if (stored_str(v, &nw.secret) < 0)
				goto out;
		} else if (strcmp(k, "createdAt") == 0) {
			if (stored_int(v, &nw.created_at_ms) < 0)
				goto out;
		} else if (strcmp(k, "updatedAt") == 0) {
			if (stored_int(v, &nw.updated_at_ms) < 0)
				goto out;
		} else if (strcmp(k, "disabledAt") == 0) {
			if (stored_int(v, &nw.disabled_at_ms) < 0)
				goto out;
		} else if (strcmp(k, "disabledReason") == 0) {
			if (stored_str(v, &nw.disabled_reason) < 0)
				goto out;
		} else if (strcmp(k, "revision") == 0) {
			if (stored_int(v, &nw.revision) < 0)
				goto out;
		}
		/* Other members: written by a newer version; ignored. */
	}
	/* The invariants of struct webhook, so no reader has to doubt them. */
	if (!has_event || !nw.id || !*nw.id || !nw.company_id ||
	    !*nw.company_id || !nw.target || !*nw.target)
		goto out;
	if (event_type_is_derived(nw.event) ?
	    (nw.period == PERIOD_NONE || nw.period_value < 1) :
	    (nw.period != PERIOD_NONE || nw.period_value != 0))
		goto out;
	if (nw.enabled)
		nw.disabled_at_ms = 0;
	webhook_release(wh);
	*wh = nw;
	webhook_init(&nw);
	rc = 0;
out:
	webhook_release(&nw);
	yajl_tree_free(root);
	return rc;
}

/* ---- company settings ---- */

/*
 * A plausible address, not an RFC 5322 parser: one '@', a local part of
 * 1-64 visible ASCII characters, a domain of dot-separated labels
 * (letters, digits, '-') with at least one dot.
 */
static int email_plausible(const char *s)
{
	const char *at = strchr(s, '@'), *p, *label;
	size_t len = strlen(s);

	if (len > MAX_EMAIL_LEN || !at || at == s || at - s > 64 ||
	    strchr(at + 1, '@'))
		return 0;
	for (p = s; p < at; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f || strchr("\"(),:;<>[\\]", c))
			return 0;
	}
	if (!strchr(at + 1, '.'))
		return 0;
	label = at + 1;
	for (p = at + 1;; p++) {
		if (*p == '.' || *p == '\0') {
			if (p == label || label[0] == '-' || p[-1] == '-')
				return 0;
			if (*p == '\0')
				break;
			label = p + 1;
		} else if (!is_alpha((unsigned char)*p) &&
			   !is_digit((unsigned char)*p) && *p != '-') {
			return 0;
		}
	}
	return 1;
}

int company_settings_apply_json(struct company_settings *s, const char *body,
				size_t len, struct webhook_error *err)
{
	struct company_settings ns;
	int seen_email = 0, seen_type = 0;
	yajl_val root;
	size_t i;
	int rc = -1;

	root = parse_body(body, len, err);
	if (!root)
		return -1;
	/* PUT semantics: what is not given takes its default. */
	company_settings_init(&ns);
	for (i = 0; i < root->u.object.len; i++) {
		const char *name = root->u.object.keys[i];
		yajl_val v = root->u.object.values[i];
		const char *str = YAJL_GET_STRING(v);

		if (strcmp(name, "webhookDisabledNotificationEmail") == 0) {
			if (seen_email++) {
				refuse_name(err, name, "is given more than once");
				goto out;
			}
			if (YAJL_IS_NULL(v))
				continue;
			if (!str || !email_plausible(str)) {
				refuse_name(err, name, "must be null or an email address");
				goto out;
			}
			if (set_str(&ns.notification_email, str) < 0) {
				set_error(err, "internal", NULL, "out of memory");
				goto out;
			}
		} else if (strcmp(name, "webhookPayloadDataType") == 0) {
			if (seen_type++) {
				refuse_name(err, name, "is given more than once");
				goto out;
			}
			if (!str || payload_type_parse(str, &ns.payload_type) < 0) {
				refuse_name(err, name, "must be \"Json\" or \"Xml\"");
				goto out;
			}
		} else {
			refuse_name(err, name, "is not a known field");
			goto out;
		}
	}
	company_settings_release(s);
	*s = ns;
	company_settings_init(&ns);
	rc = 0;
out:
	company_settings_release(&ns);
	yajl_tree_free(root);
	return rc;
}

int company_settings_to_json(const struct company_settings *s, struct buf *out)
{
	buf_addc(out, '{');
	add_key(out, "webhookDisabledNotificationEmail");
	add_str_or_null(out, s->notification_email);
	buf_addc(out, ',');
	add_key(out, "webhookPayloadDataType");
	add_str_or_null(out, payload_type_name(s->payload_type == PAYLOAD_XML ?
					       PAYLOAD_XML : PAYLOAD_JSON));
	return buf_addc(out, '}');
}

int company_settings_from_json(struct company_settings *s, const char *json,
			       size_t len)
{
	struct company_settings ns;
	yajl_val root, v;
	const char *str;
	size_t i;

	root = parse_stored(json, len);
	if (!root)
		return -1;
	company_settings_init(&ns);
	for (i = 0; i < root->u.object.len; i++) {
		v = root->u.object.values[i];
		str = YAJL_GET_STRING(v);
		if (strcmp(root->u.object.keys[i], "webhookDisabledNotificationEmail") == 0) {
			if (str && set_str(&ns.notification_email, str) < 0)
				goto fail;
		} else if (strcmp(root->u.object.keys[i], "webhookPayloadDataType") == 0) {
			if (str && payload_type_parse(str, &ns.payload_type) < 0)
				goto fail;
		}
	}
	yajl_tree_free(root);
	company_settings_release(s);
	*s = ns;
	return 0;
fail:
	company_settings_release(&ns);
	yajl_tree_free(root);
	return -1;
}
