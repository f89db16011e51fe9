/*
 * retryjob: encoding and decoding of the retry job kept in Redis. See
 * include/promo_webhooks/retryjob.h. Pure.
 */
#include "promo_webhooks/retryjob.h"
#include "promo_webhooks/sign.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

static void add_member(struct buf *out, const char *name, const char *value)
{
	buf_addf(out, "\"%s\":", name);
	buf_add_json_string(out, value, strlen(value));
	buf_addc(out, ',');
}

int retry_job_encode(const struct retry_job *job, struct buf *out)
{
	const char *period = period_unit_name(job->period);
	const char *type = event_type_name(job->type);

	if (!type)
		return -1;
	buf_addc(out, '{');
	add_member(out, "webhookId", job->webhook_id);
	add_member(out, "messageId", job->message_id);
	add_member(out, "eventId", job->event_id);
	add_member(out, "event", type);
	add_member(out, "companyId", job->company_id);
	add_member(out, "occurredAt", job->occurred_at);
	if (period) {
		add_member(out, "period", period);
		buf_addf(out, "\"periodValue\":%" PRId64 ",", job->period_value);
	}
	buf_addf(out, "\"attempt\":%d,\"data\":", job->attempt);
	buf_add_json_string(out, job->data, job->data_len);
	buf_addc(out, '}');
	return out->failed ? -1 : 0;
}

/* A copy of the string member name, or NULL when absent or not a string. */
static char *string_member(yajl_val root, const char *name)
{
	const char *path[] = { name, NULL };
	yajl_val v = yajl_tree_get(root, path, yajl_t_string);
	const char *s = v ? YAJL_GET_STRING(v) : NULL;

	return s ? strdup(s) : NULL;
}

/*
 * A period occurrence's event id "<promotionId>:<date>:<at>", its message
 * id and attempt 1 (retryjob.h). Returns 0, or -1 when it lacks a member.
 */
static int occurrence_ids(yajl_val root, struct retry_job *job)
{
	const char *p_promotion[] = { "promotionId", NULL };
	const char *p_date[] = { "date", NULL };
	const char *p_at[] = { "at", NULL };
	yajl_val x = yajl_tree_get(root, p_promotion, yajl_t_string);
	yajl_val date = yajl_tree_get(root, p_date, yajl_t_string);
	yajl_val at = yajl_tree_get(root, p_at, yajl_t_string);
	char id[SIGN_MESSAGE_ID_LEN];
	struct buf eid;

	if (!x || !date || !at)
		return -1;
	buf_init(&eid, 4096);
	buf_addf(&eid, "%s:%s:%s", YAJL_GET_STRING(x), YAJL_GET_STRING(date),
		 YAJL_GET_STRING(at));
	if (eid.failed) {
		buf_release(&eid);
		return -1;
	}
	job->event_id = buf_detach(&eid, NULL);
	buf_release(&eid);
	sign_message_id(RETRY_JOB_PERIOD_SOURCE, job->event_id, job->webhook_id, "", id);
	job->message_id = strdup(id);
	job->attempt = 1;
	return job->event_id && job->message_id ? 0 : -1;
}

int retry_job_decode(struct retry_job *job, const char *text, size_t len,
		     char *err, size_t errlen)
{
	const char *p_attempt[] = { "attempt", NULL };
	const char *p_value[] = { "periodValue", NULL };
	char ebuf[128], *copy, *type = NULL, *period = NULL;
	yajl_val root, v;
	int rc = -1;

	memset(job, 0, sizeof(*job));
	copy = malloc(len + 1);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	root = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
	free(copy);
	if (!root || !YAJL_IS_OBJECT(root)) {
		snprintf(err, errlen, "retry job is not a JSON object");
		goto out;
	}
	job->webhook_id = string_member(root, "webhookId");
	job->message_id = string_member(root, "messageId");
	job->event_id = string_member(root, "eventId");
	if (!job->message_id && !job->event_id && job->webhook_id &&
	    occurrence_ids(root, job) < 0) {
		snprintf(err, errlen, "period occurrence lacks a member");
		goto out;
	}
	job->company_id = string_member(root, "companyId");
	job->occurred_at = string_member(root, "occurredAt");
	job->data = string_member(root, "data");
	type = string_member(root, "event");
	period = string_member(root, "period");
	if (!job->webhook_id || !job->message_id || !job->event_id ||
	    !job->company_id || !job->occurred_at || !job->data || !type) {
		snprintf(err, errlen, "retry job lacks a member");
		goto out;
	}
	job->data_len = strlen(job->data);
	if (event_type_parse(type, strlen(type), &job->type) < 0) {
		snprintf(err, errlen, "retry job has an unknown event type");
		goto out;
	}
	v = yajl_tree_get(root, p_attempt, yajl_t_number);
	if (job->attempt == 1 && !v) {
		/* a period occurrence: its first attempt */
	} else if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 1 ||
		   YAJL_GET_INTEGER(v) > 1000) {
		snprintf(err, errlen, "retry job has a bad attempt number");
		goto out;
	} else {
		job->attempt = (int)YAJL_GET_INTEGER(v);
	}
	if (period) {
		v = yajl_tree_get(root, p_value, yajl_t_number);
		if (period_unit_parse(period, &job->period) < 0 ||
		    !v || !YAJL_IS_INTEGER(v)) {
			snprintf(err, errlen, "retry job has a bad period");
			goto out;
		}
		job->period_value = YAJL_GET_INTEGER(v);
	}
	rc = 0;
out:
	free(type);
	free(period);
	if (root)
		yajl_tree_free(root);
	if (rc < 0)
		retry_job_release(job);
	return rc;
}

void retry_job_release(struct retry_job *job)
{
	free(job->webhook_id);
	free(job->message_id);
	free(job->event_id);
	free(job->company_id);
	free(job->occurred_at);
	free(job->data);
	memset(job, 0, sizeof(*job));
}
