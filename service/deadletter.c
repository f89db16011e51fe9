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

struct deadletter {
	struct event_base *base;
	const struct config *cfg;
	struct kafka *kafka;
	deadletter_done_fn *done;
	void *arg;
	struct dlq_job *jobs;   /* copies not yet ended */
	size_t pending;
	int stopping;           /* deadletter_stop: give up on failure */
	uint64_t copied;        /* acknowledged copies */
};

/* An invalid message on its way to the dead-letter topic: everything is a
 * copy, since the Kafka message is gone after on_message returns. */
struct dlq_job {
	struct deadletter *d;
	struct dlq_job *prev, *next; /* in d->jobs */
	struct offsets_ticket ticket;
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	struct event_header *headers; /* original headers, then the four x- ones */
	size_t n_headers;
	char *strings;                /* backing store of header names/values */
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
	free(j);
}

static void dlq_send(struct dlq_job *j);

/* Ends a copy: hands its ticket back and frees it. */
static void dlq_end(struct dlq_job *j, int copied)
{
	struct deadletter *d = j->d;
	struct offsets_ticket t = j->ticket;

	d->pending--;
	dlq_free(j);
	d->done(d->arg, t, copied);
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
		dlq_end(j, 0);
		return;
	}
	if (backoff_arm(&j->retry, d->base, 500, DLQ_MAX_BACKOFF_MS, dlq_retry_cb, j) < 0) {
		log_error("cannot arm dead-letter retry timer", "%s", "");
		dlq_end(j, 0);
		return;
	}
	log_warn("dead-letter produce failed, retrying", "reason=\"%s\" backoff_ms=%d", why,
		 j->retry.ms);
}

static void dlq_done(void *arg, int ok, const char *err)
{
	struct dlq_job *j = arg;
	struct deadletter *d = j->d;

	if (!ok) {
		dlq_schedule_retry(j, err ? err : "unknown error");
		return;
	}
	d->copied++;
	dlq_end(j, 1);
}

static void dlq_send(struct dlq_job *j)
{
	char err[256];

	if (kafka_produce(j->d->kafka, j->d->cfg->dead_letter_topic, j->key,
			  j->key_len, j->value, j->value_len, j->headers,
			  j->n_headers, dlq_done, j, err, sizeof(err)) < 0)
		dlq_schedule_retry(j, err);
}

/* Copies the message and adds the four x- headers of contract section 3. */
static struct dlq_job *dlq_job_new(struct deadletter *d, const struct kafka_message *m,
				   const char *reason, struct offsets_ticket t)
{
	char partbuf[16], offbuf[24];
	const char *extra_names[4] = { "x-dead-letter-reason", "x-original-topic",
				       "x-original-partition", "x-original-offset" };
	const char *extra_values[4];
	struct dlq_job *j;
	size_t i, total = 0, pos = 0;

	snprintf(partbuf, sizeof(partbuf), "%" PRId32, m->partition);
	snprintf(offbuf, sizeof(offbuf), "%" PRId64, m->offset);
	extra_values[0] = reason;
	extra_values[1] = m->topic;
	extra_values[2] = partbuf;
	extra_values[3] = offbuf;

	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->d = d;
	j->ticket = t;
	j->n_headers = m->n_headers + 4;
	j->headers = calloc(j->n_headers, sizeof(*j->headers));
	for (i = 0; i < m->n_headers; i++)
		total += strlen(m->headers[i].name) + 1 + m->headers[i].value_len;
	for (i = 0; i < 4; i++)
		total += strlen(extra_names[i]) + 1 + strlen(extra_values[i]);
	j->strings = malloc(total + 1);
	if (m->key_len) {
		j->key = malloc(m->key_len);
		j->key_len = m->key_len;
	}
	if (m->value) {
		j->value = malloc(m->value_len ? m->value_len : 1);
		j->value_len = m->value_len;
	}
	if (!j->headers || !j->strings || (m->key_len && !j->key) ||
	    (m->value && !j->value)) {
		dlq_free(j);
		return NULL;
	}
	if (m->key_len)
		memcpy(j->key, m->key, m->key_len);
	if (m->value && m->value_len)
		memcpy(j->value, m->value, m->value_len);
	for (i = 0; i < j->n_headers; i++) {
		const char *name;
		const void *value;
		size_t nlen, vlen;

		if (i < m->n_headers) {
			name = m->headers[i].name;
			value = m->headers[i].value;
			vlen = m->headers[i].value_len;
		} else {
			name = extra_names[i - m->n_headers];
			value = extra_values[i - m->n_headers];
			vlen = strlen(value);
		}
		nlen = strlen(name) + 1;
		memcpy(j->strings + pos, name, nlen);
		j->headers[i].name = j->strings + pos;
		pos += nlen;
		if (value) {
			if (vlen)
				memcpy(j->strings + pos, value, vlen);
			j->headers[i].value = j->strings + pos;
			j->headers[i].value_len = vlen;
			pos += vlen;
		}
	}
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
		    const char *reason, struct offsets_ticket ticket)
{
	struct dlq_job *j = dlq_job_new(d, m, reason, ticket);

	if (!j)
		return -1;
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

void deadletter_metrics(const struct deadletter *d, struct buf *out)
{
	prom_counter(out, "promo_webhooks_events_dead_lettered_total",
		     "Invalid messages published to the dead-letter topic.",
		     d->copied);
}
