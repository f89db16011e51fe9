/*
 * deadletter: copies invalid messages to the dead-letter topic, retrying
 * with backoff until the broker acknowledges. See
 * include/promo_webhooks/deadletter.h.
 */
#include "promo_webhooks/deadletter.h"
#include "promo_webhooks/backoff.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/prom.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Dead-letter produce retries back off up to this. */
#define DLQ_MAX_BACKOFF_MS 30000
/* The x- headers this module adds: reason, original topic, partition,
 * offset, and the original size for a truncated copy. */
#define DLQ_EXTRA 5
#define DLQ_REASON_MAX 512
/* DEADLETTER_TRUNCATED_MAX, as text for the reason header. */
#define DLQ_TRUNCATED_TEXT "65536"
_Static_assert(DEADLETTER_TRUNCATED_MAX == 65536, "DLQ_TRUNCATED_TEXT follows it");

struct deadletter {
	struct event_base *base;
	const struct config *cfg;
	struct kafka *kafka;
	deadletter_done_fn *done;
	void *arg;
	struct dlq_job *jobs;   /* copies not yet ended */
	size_t pending;
	int stopping;           /* deadletter_stop: give up on failure */
	struct deadletter_counts counts;
};

/* How much of the value a copy carries. */
enum dlq_stage {
	DLQ_WHOLE,     /* the message as it came */
	DLQ_TRUNCATED, /* the value cut to DEADLETTER_TRUNCATED_MAX bytes */
	DLQ_EMPTY,     /* no value at all */
};

/* An invalid message on its way to the dead-letter topic: everything is a
 * copy, since the Kafka message is gone after on_message returns. */
struct dlq_job {
	struct deadletter *d;
	struct dlq_job *prev, *next; /* in d->jobs */
	struct offsets_ticket ticket;
	void *part;                   /* handed back to done */
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	struct event_header *headers; /* original headers, then the x- ones */
	size_t n_orig;                /* original headers */
	size_t n_headers;
	char *strings;                /* backing store of the original headers */
	char *topic;                  /* the original coordinates */
	int32_t partition;
	int64_t offset;
	char reason[DLQ_REASON_MAX];  /* why it is a dead letter */
	char x_reason[DLQ_REASON_MAX + 128]; /* x-dead-letter-reason as sent */
	char x_part[16], x_off[24], x_size[24];
	enum dlq_stage stage;
	char too_large[128];          /* the error that made it shrink */
	struct backoff retry;         /* produce retries */
};

static void dlq_free(struct dlq_job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else if (j->d->jobs == j)
		j->d->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	backoff_release(&j->retry);
	free(j->key);
	free(j->value);
	free(j->headers);
	free(j->strings);
	free(j->topic);
	free(j);
}

static void dlq_send(struct dlq_job *j);

/* Ends a copy: hands its ticket back and frees it. */
static void dlq_end(struct dlq_job *j, enum deadletter_end end)
{
	struct deadletter *d = j->d;
	struct offsets_ticket t = j->ticket;
	void *part = j->part;

	d->pending--;
	dlq_free(j);
	d->done(d->arg, t, part, end);
}

static void dlq_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dlq_job *j = arg;

	(void)fd;
	(void)what;
	dlq_send(j);
}

static void dlq_schedule_retry(struct dlq_job *j, const char *why)
{
	struct deadletter *d = j->d;

	if (d->stopping) {
		/* Not finished: the message is consumed again after restart. */
		log_warn("dead-letter produce given up at shutdown", "reason=\"%s\"", why);
		dlq_end(j, DEADLETTER_GIVEN_UP);
		return;
	}
	if (backoff_arm(&j->retry, d->base, 500, DLQ_MAX_BACKOFF_MS, dlq_retry_cb, j) < 0) {
		log_error("cannot arm dead-letter retry timer", "%s", "");
		dlq_end(j, DEADLETTER_GIVEN_UP);
		return;
	}
	log_warn("dead-letter produce failed, retrying", "reason=\"%s\" backoff_ms=%d", why,
		 j->retry.ms);
}

/* Sets the x- headers for the job's stage. */
static void dlq_set_extra(struct dlq_job *j)
{
	const char *names[DLQ_EXTRA] = { "x-dead-letter-reason", "x-original-topic",
					 "x-original-partition", "x-original-offset",
					 "x-original-size" };
	const char *values[DLQ_EXTRA];
	size_t i, n = j->stage == DLQ_WHOLE ? DLQ_EXTRA - 1 : DLQ_EXTRA;

	if (j->stage == DLQ_WHOLE)
		snprintf(j->x_reason, sizeof(j->x_reason), "%s", j->reason);
	else
		snprintf(j->x_reason, sizeof(j->x_reason),
			 "%s; the message (value %s bytes) is too large to copy, value %s",
			 j->reason, j->x_size,
			 j->stage == DLQ_TRUNCATED ? "truncated to " DLQ_TRUNCATED_TEXT " bytes"
						   : "left out");
	values[0] = j->x_reason;
	values[1] = j->topic;
	values[2] = j->x_part;
	values[3] = j->x_off;
	values[4] = j->x_size;
	for (i = 0; i < n; i++) {
		j->headers[j->n_orig + i].name = names[i];
		j->headers[j->n_orig + i].value = values[i];
		j->headers[j->n_orig + i].value_len = strlen(values[i]);
	}
	j->n_headers = j->n_orig + n;
}

/* A copy that can never be made: logged once at error level, counted, and
 * ended so that the partition moves on. */
static void dlq_not_copied(struct dlq_job *j, const char *why)
{
	struct deadletter *d = j->d;

	d->counts.not_copied++;
	log_error("invalid message not copied to the dead-letter topic, skipped",
		  "topic=%s partition=%" PRId32 " offset=%" PRId64 " dead_letter_topic=%s value_bytes=%zu reason=\"%s\" error=\"%s\"",
		  j->topic, j->partition, j->offset, d->cfg->dead_letter_topic, j->value_len,
		  j->reason, why);
	dlq_end(j, DEADLETTER_NOT_COPIED);
}

/* The copy is too large: the next, smaller one, or the end. */
static void dlq_shrink(struct dlq_job *j, const char *why)
{
	if (j->stage == DLQ_WHOLE) {
		snprintf(j->too_large, sizeof(j->too_large), "%s", why);
		j->stage = j->value_len > DEADLETTER_TRUNCATED_MAX ? DLQ_TRUNCATED : DLQ_EMPTY;
	} else if (j->stage == DLQ_TRUNCATED) {
		j->stage = DLQ_EMPTY;
	} else {
		dlq_not_copied(j, why);
		return;
	}
	dlq_set_extra(j);
	dlq_send(j);
}

static void dlq_done(void *arg, enum kafka_produce_result result, const char *err)
{
	struct dlq_job *j = arg;
	struct deadletter *d = j->d;
	const char *why = err && *err ? err : "unknown error";

	switch (result) {
	case KAFKA_PRODUCED:
		d->counts.copied++;
		if (j->stage != DLQ_WHOLE) {
			/* Logged once the smaller copy is in: a message that
			 * cannot be copied at all gets dlq_not_copied's line
			 * instead. */
			d->counts.truncated++;
			log_error("invalid message too large for the dead-letter topic, copied with its value truncated",
				  "topic=%s partition=%" PRId32 " offset=%" PRId64 " value_bytes=%zu kept_bytes=%zu error=\"%s\"",
				  j->topic, j->partition, j->offset, j->value_len,
				  j->stage == DLQ_TRUNCATED ? (size_t)DEADLETTER_TRUNCATED_MAX : (size_t)0,
				  j->too_large);
		}
		dlq_end(j, DEADLETTER_COPIED);
		return;
	case KAFKA_PRODUCE_TOO_LARGE:
		d->counts.failed++;
		dlq_shrink(j, why);
		return;
	case KAFKA_PRODUCE_REFUSED:
		d->counts.failed++;
		dlq_not_copied(j, why);
		return;
	case KAFKA_PRODUCE_FAILED:
		break;
	}
	d->counts.failed++;
	dlq_schedule_retry(j, why);
}

static void dlq_send(struct dlq_job *j)
{
	enum kafka_produce_result r;
	size_t value_len = j->value_len;
	char err[256];

	if (j->stage == DLQ_TRUNCATED && value_len > DEADLETTER_TRUNCATED_MAX)
		value_len = DEADLETTER_TRUNCATED_MAX;
	else if (j->stage == DLQ_EMPTY)
		value_len = 0;
	r = kafka_produce(j->d->kafka, j->d->cfg->dead_letter_topic, j->key, j->key_len,
			  j->stage == DLQ_EMPTY ? NULL : j->value, value_len, j->headers,
			  j->n_headers, dlq_done, j, err, sizeof(err));
	if (r != KAFKA_PRODUCED)
		dlq_done(j, r, err);
}

/* Copies the message; the x- headers of contract section 3 follow. */
static struct dlq_job *dlq_job_new(struct deadletter *d, const struct kafka_message *m,
				   const char *reason, struct offsets_ticket t)
{
	struct dlq_job *j;
	size_t i, total = 0, pos = 0;

	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->d = d;
	j->ticket = t;
	j->partition = m->partition;
	j->offset = m->offset;
	snprintf(j->reason, sizeof(j->reason), "%s", reason);
	snprintf(j->x_part, sizeof(j->x_part), "%" PRId32, m->partition);
	snprintf(j->x_off, sizeof(j->x_off), "%" PRId64, m->offset);
	snprintf(j->x_size, sizeof(j->x_size), "%zu", m->value ? m->value_len : 0);
	j->topic = strdup(m->topic);
	j->n_orig = m->n_headers;
	j->headers = calloc(m->n_headers + DLQ_EXTRA, sizeof(*j->headers));
	for (i = 0; i < m->n_headers; i++)
		total += strlen(m->headers[i].name) + 1 + m->headers[i].value_len;
	j->strings = malloc(total + 1);
	if (m->key_len) {
		j->key = malloc(m->key_len);
		j->key_len = m->key_len;
	}
	if (m->value) {
		j->value = malloc(m->value_len ? m->value_len : 1);
		j->value_len = m->value_len;
	}
	if (!j->topic || !j->headers || !j->strings || (m->key_len && !j->key) ||
	    (m->value && !j->value)) {
		dlq_free(j);
		return NULL;
	}
	if (m->key_len)
		memcpy(j->key, m->key, m->key_len);
	if (m->value && m->value_len)
		memcpy(j->value, m->value, m->value_len);
	for (i = 0; i < m->n_headers; i++) {
		size_t nlen = strlen(m->headers[i].name) + 1;
		size_t vlen = m->headers[i].value_len;

		memcpy(j->strings + pos, m->headers[i].name, nlen);
		j->headers[i].name = j->strings + pos;
		pos += nlen;
		if (m->headers[i].value) {
			if (vlen)
				memcpy(j->strings + pos, m->headers[i].value, vlen);
			j->headers[i].value = j->strings + pos;
			j->headers[i].value_len = vlen;
			pos += vlen;
		}
	}
	dlq_set_extra(j);
	return j;
}

struct deadletter *deadletter_new(struct event_base *base,
				  const struct config *cfg, struct kafka *kafka,
				  deadletter_done_fn *done, void *arg)
{
	struct deadletter *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->base = base;
	d->cfg = cfg;
	d->kafka = kafka;
	d->done = done;
	d->arg = arg;
	return d;
}

void deadletter_free(struct deadletter *d)
{
	if (!d)
		return;
	while (d->jobs)
		dlq_free(d->jobs);
	free(d);
}

int deadletter_copy(struct deadletter *d, const struct kafka_message *m,
		    const char *reason, struct offsets_ticket ticket, void *part)
{
	struct dlq_job *j = dlq_job_new(d, m, reason, ticket);

	if (!j)
		return -1;
	j->part = part;
	j->next = d->jobs;
	if (d->jobs)
		d->jobs->prev = j;
	d->jobs = j;
	d->pending++;
	dlq_send(j);
	return 0;
}

void deadletter_stop(struct deadletter *d)
{
	d->stopping = 1;
}

size_t deadletter_pending(const struct deadletter *d)
{
	return d->pending;
}

void deadletter_counts(const struct deadletter *d, struct deadletter_counts *out)
{
	*out = d->counts;
}

void deadletter_metrics(const struct deadletter *d, struct buf *out)
{
	prom_counter(out, "promo_webhooks_events_dead_lettered_total",
		     "Invalid messages published to the dead-letter topic.",
		     d->counts.copied);
}
