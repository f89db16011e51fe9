/*
 * notice: the stored form and the rendered message of a "webhook disabled"
 * notice. See include/promo_webhooks/notice.h. Pure.
 */
#include "promo_webhooks/notice.h"
#include "promo_webhooks/webhook.h"
#include "promo_webhooks/redact.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#define NOTICE_MAX_TEXT 4096

static void add_str_member(struct buf *out, const char *name, const char *v)
{
	buf_addf(out, "\"%s\":", name);
	if (v)
		buf_add_json_string(out, v, strlen(v));
	else
		buf_adds(out, "null");
}

int notice_fields_encode(const struct notice_fields *nf, struct buf *out)
{
	size_t i;

	buf_addc(out, '{');
	add_str_member(out, "to", nf->to);
	buf_addc(out, ',');
	add_str_member(out, "companyId", nf->company_id);
	buf_addc(out, ',');
	add_str_member(out, "webhookId", nf->webhook_id);
	buf_addc(out, ',');
	add_str_member(out, "event", nf->event);
	buf_addc(out, ',');
	add_str_member(out, "target", nf->target);
	buf_addc(out, ',');
	add_str_member(out, "disabledAt", nf->disabled_at);
	buf_addf(out, ",\"count\":%ld,\"windowMs\":%" PRId64 ",\"lastStatus\":",
		 nf->count, nf->window_ms);
	if (nf->last_status > 0)
		buf_addf(out, "%ld", nf->last_status);
	else
		buf_adds(out, "null");
	buf_addc(out, ',');
	add_str_member(out, "lastError", nf->last_error);
	buf_adds(out, ",\"failures\":[");
	for (i = 0; i < nf->n_failures; i++) {
		if (i > 0)
			buf_addc(out, ',');
		buf_add_json_string(out, nf->failures[i], nf->failure_lens[i]);
	}
	buf_adds(out, "]}");
	return out->failed ? -1 : 0;
}

static yajl_val member(yajl_val root, const char *name, yajl_type type)
{
	const char *path[] = { name, NULL };

	return yajl_tree_get(root, path, type);
}

static const char *str_member(yajl_val root, const char *name)
{
	yajl_val v = member(root, name, yajl_t_string);

	return v ? YAJL_GET_STRING(v) : NULL;
}

static yajl_val parse(const char *text, size_t len)
{
	char ebuf[128], *copy = malloc(len + 1);
	yajl_val root;

	if (!copy)
		return NULL;
	memcpy(copy, text, len);
	copy[len] = '\0';
	root = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
	free(copy);
	return root;
}

/* One failure of the window as the message lists it: {"at","status",
 * "error"}, from the failure rule's member. */
static void add_failure(struct buf *out, const char *text)
{
	yajl_val f = parse(text, strlen(text));
	yajl_val status = f ? member(f, "status", yajl_t_number) : NULL;

	buf_addc(out, '{');
	add_str_member(out, "at", f ? str_member(f, "at") : NULL);
	buf_adds(out, ",\"status\":");
	if (status && YAJL_IS_INTEGER(status))
		buf_addf(out, "%lld", YAJL_GET_INTEGER(status));
	else
		buf_adds(out, "null");
	buf_addc(out, ',');
	add_str_member(out, "error", f ? str_member(f, "error") : NULL);
	buf_addc(out, '}');
	if (f)
		yajl_tree_free(f);
}

static int render(const char *stored, size_t len, struct buf *out, char *err,
		  size_t errlen)
{
	const char *to, *company, *webhook, *event, *target, *at, *last_error;
	char why[512], span[32], subject[1024];
	yajl_val root, count, window, status, failures;
	struct buf text;
	size_t i, k = 0;
	int rc = -1;

	root = parse(stored, len);
	if (!root || !YAJL_IS_OBJECT(root)) {
		snprintf(err, errlen, "stored notice is not a JSON object");
		goto out;
	}
	to = str_member(root, "to");
	company = str_member(root, "companyId");
	webhook = str_member(root, "webhookId");
	event = str_member(root, "event");
	target = str_member(root, "target");
	at = str_member(root, "disabledAt");
	last_error = str_member(root, "lastError");
	count = member(root, "count", yajl_t_number);
	window = member(root, "windowMs", yajl_t_number);
	status = member(root, "lastStatus", yajl_t_number);
	failures = member(root, "failures", yajl_t_array);
	if (!to || !company || !webhook || !event || !target || !at || !count ||
	    !YAJL_IS_INTEGER(count) || !window || !YAJL_IS_INTEGER(window) ||
	    !failures) {
		snprintf(err, errlen, "stored notice lacks a field");
		goto out;
	}
	if (status && YAJL_IS_INTEGER(status) && last_error)
		snprintf(why, sizeof(why), "HTTP status %lld (%s)",
			 YAJL_GET_INTEGER(status), last_error);
	else if (status && YAJL_IS_INTEGER(status))
		snprintf(why, sizeof(why), "HTTP status %lld", YAJL_GET_INTEGER(status));
	else if (last_error)
		snprintf(why, sizeof(why), "%s", last_error);
	else
		snprintf(why, sizeof(why), "unknown");
	webhook_format_window(YAJL_GET_INTEGER(window), span, sizeof(span));
	snprintf(subject, sizeof(subject), "Webhook disabled: %s -> %s", event, target);
	buf_init(&text, NOTICE_MAX_TEXT);
	buf_addf(&text, "Your webhook %s for %s events to %s has been disabled at %s "
		 "after %lld failed deliveries within %s. Last failure: %s. Fix the "
		 "receiver, then enable the webhook again (PATCH /v1/companies/%s/"
		 "webhooks/%s with {\"enabled\": true}); enabling it clears its "
		 "failure history.", webhook, event, target, at,
		 YAJL_GET_INTEGER(count), span, why, company, webhook);

	buf_adds(out, "{\"type\":\"WebhookDisabled\",");
	add_str_member(out, "to", to);
	buf_addc(out, ',');
	add_str_member(out, "subject", subject);
	buf_adds(out, ",\"text\":");
	buf_add_json_string(out, buf_str(&text), text.len);
	buf_addc(out, ',');
	add_str_member(out, "companyId", company);
	buf_addc(out, ',');
	add_str_member(out, "webhookId", webhook);
	buf_addc(out, ',');
	add_str_member(out, "event", event);
	buf_addc(out, ',');
	add_str_member(out, "target", target);
	buf_addc(out, ',');
	add_str_member(out, "disabledAt", at);
	buf_adds(out, ",\"failures\":[");
	for (i = 0; i < YAJL_GET_ARRAY(failures)->len; i++) {
		yajl_val f = YAJL_GET_ARRAY(failures)->values[i];

		if (!YAJL_IS_STRING(f))
			continue;
		if (k++ > 0)
			buf_addc(out, ',');
		add_failure(out, YAJL_GET_STRING(f));
	}
	buf_adds(out, "]}");
	rc = text.failed || out->failed ? -1 : 0;
	if (rc < 0)
		snprintf(err, errlen, "notice too long");
	buf_release(&text);
out:
	if (root)
		yajl_tree_free(root);
	return rc;
}

/* A target stored before user info in targets was refused may hold a
 * password: the message shows every URL in it (target, subject, text, the
 * receivers' errors) with its user info redacted. */
int notice_render(const char *stored, size_t len, struct buf *out, char *err,
		  size_t errlen)
{
	struct buf raw;
	int rc;

	buf_init(&raw, 0);
	rc = render(stored, len, &raw, err, errlen);
	if (rc == 0 && redact_userinfo(raw.data, raw.len, out) < 0) {
		snprintf(err, errlen, "notice too long");
		rc = -1;
	}
	buf_release(&raw);
	return rc;
}
