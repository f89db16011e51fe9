/*
 * pipeline: the order of the stages, and the at-least-once bookkeeping
 * between them. See include/promo_webhooks/pipeline.h.
 *
 * Every consumed message becomes a tracked ticket (offsets.c). The ticket is
 * finished when the message has a recorded outcome: it was dead-lettered
 * (the broker acknowledged it), it matched no webhook, or every delivery it
 * caused completed. A delivery given up at shutdown does not finish its
 * ticket, so the offset stays behind it and the event is consumed again
 * after a restart.
 */
#include "promo_webhooks/pipeline.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "promo_webhooks/deliver.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/kafka.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/match.h"
#include "promo_webhooks/offsets.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/render.h"
#include "promo_webhooks/sign.h"

/* Intake resumes when pending deliveries fall to this share of the bound. */
#define PIPELINE_RESUME_NUM 3
#define PIPELINE_RESUME_DEN 4
/* Dead-letter produce retries back off up to this. */
#define PIPELINE_DLQ_MAX_BACKOFF_MS 30000
#define PIPELINE_TICK_MS 100

enum pipeline_state {
	PIPELINE_IDLE,     /* created, not started */
	PIPELINE_WAITING,  /* started, waiting for the registry's first load */
	PIPELINE_RUNNING,  /* consuming */
	PIPELINE_DRAINING, /* stop requested: intake off, deliveries finishing */
	PIPELINE_CLOSING,  /* leaving the group */
	PIPELINE_STOPPED,
};

/* The deliveries one event caused; finishes its ticket when the last one
 * has an outcome. */
struct inflight_event {
	struct offsets_ticket ticket;
	unsigned remaining;  /* deliveries without an outcome yet */
	unsigned cancelled;  /* deliveries given up at shutdown */
	int64_t taken_ms;
};

struct delivery_job {
	struct pipeline *p;
	struct inflight_event *ie;
	enum event_type type;
	char webhook_id[40];
	char message_id[SIGN_MESSAGE_ID_LEN];
};

/* An invalid message on its way to the dead-letter topic: everything is a
 * copy, since the Kafka message is gone after on_message returns. */
struct dlq_job {
	struct pipeline *p;
	struct offsets_ticket ticket;
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	struct event_header *headers; /* original headers, then the four x- ones */
	size_t n_headers;
	char *strings;                /* backing store of header names/values */
	int backoff_ms;
	struct event *retry_timer;
};

struct pipeline_counters {
	uint64_t consumed;
	uint64_t dead_lettered;
	uint64_t deliveries[DELIVER_OTHER + 1];
	uint64_t unmatched;
};

struct pipeline {
	struct event_base *base;
	const struct config *cfg;
	struct store *store;
	struct registry *reg;
	struct kafka *kafka;
	struct deliver *deliver;
	struct offsets *offsets;
	struct event *tick;
	struct event *grace_timer;
	enum pipeline_state state;
	int intake_on;
	size_t dlq_pending;     /* dead-letter produces not yet acknowledged */
	struct buf body;        /* render scratch, reused per delivery */
	struct pipeline_counters counters;
	pipeline_stopped_fn *stopped;
	void *stopped_arg;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A message has its outcome: let its partition's stored offset advance. */
static void finish_ticket(struct pipeline *p, struct offsets_ticket t)
{
	const char *topic;
	int32_t partition;
	int64_t next;

	if (offsets_done(p->offsets, t, &topic, &partition, &next) == 1)
		kafka_store_offset(p->kafka, topic, partition, next);
}

static int over_bound(const struct pipeline *p)
{
	return deliver_pending(p->deliver) >= (size_t)p->cfg->max_in_flight;
}

static void set_intake(struct pipeline *p, int on)
{
	if (p->intake_on == on)
		return;
	p->intake_on = on;
	kafka_set_intake(p->kafka, on);
}

/* After any completion: resume intake once there is room again, or move a
 * shutdown on when nothing is left in flight. */
static void after_completion(struct pipeline *p);

/* ---- dead letters ---------------------------------------------------- */

static void dlq_free(struct dlq_job *j)
{
	if (j->retry_timer)
		event_free(j->retry_timer);
	free(j->key);
	free(j->value);
	free(j->headers);
	free(j->strings);
	free(j);
}

static void dlq_send(struct dlq_job *j);

static void dlq_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dlq_job *j = arg;

	(void)fd;
	(void)what;
	dlq_send(j);
}

static void dlq_schedule_retry(struct dlq_job *j, const char *why)
{
	struct pipeline *p = j->p;
	struct timeval tv;

	if (p->state >= PIPELINE_DRAINING) {
		/* Not finished: the message is consumed again after restart. */
		log_warn("dead-letter produce given up at shutdown", "reason=\"%s\"", why);
		p->dlq_pending--;
		dlq_free(j);
		after_completion(p);
		return;
	}
	j->backoff_ms = j->backoff_ms ? j->backoff_ms * 2 : 500;
	if (j->backoff_ms > PIPELINE_DLQ_MAX_BACKOFF_MS)
		j->backoff_ms = PIPELINE_DLQ_MAX_BACKOFF_MS;
	log_warn("dead-letter produce failed, retrying", "reason=\"%s\" backoff_ms=%d",
		 why, j->backoff_ms);
	if (!j->retry_timer)
		j->retry_timer = evtimer_new(p->base, dlq_retry_cb, j);
	tv.tv_sec = j->backoff_ms / 1000;
	tv.tv_usec = (j->backoff_ms % 1000) * 1000;
	if (!j->retry_timer || evtimer_add(j->retry_timer, &tv) < 0) {
		log_error("cannot arm dead-letter retry timer", "%s", "");
		p->dlq_pending--;
		dlq_free(j);
		after_completion(p);
	}
}

static void dlq_done(void *arg, int ok, const char *err)
{
	struct dlq_job *j = arg;
	struct pipeline *p = j->p;

	if (!ok) {
		dlq_schedule_retry(j, err ? err : "unknown error");
		return;
	}
	p->counters.dead_lettered++;
	finish_ticket(p, j->ticket);
	p->dlq_pending--;
	dlq_free(j);
	after_completion(p);
}

static void dlq_send(struct dlq_job *j)
{
	char err[256];

	if (kafka_produce(j->p->kafka, j->p->cfg->dead_letter_topic, j->key,
			  j->key_len, j->value, j->value_len, j->headers,
			  j->n_headers, dlq_done, j, err, sizeof(err)) < 0)
		dlq_schedule_retry(j, err);
}

/* Copies the message and adds the four x- headers of contract section 3. */
static struct dlq_job *dlq_job_new(struct pipeline *p, const struct kafka_message *m,
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
	j->p = p;
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

/* ---- deliveries ------------------------------------------------------ */

static void delivery_done(void *arg, const struct deliver_result *res)
{
	struct delivery_job *job = arg;
	struct pipeline *p = job->p;
	struct inflight_event *ie = job->ie;

	if (res->outcome <= DELIVER_OTHER)
		p->counters.deliveries[res->outcome]++;
	if (res->outcome == DELIVER_CANCELLED) {
		ie->cancelled++;
	} else if (res->outcome != DELIVER_OK) {
		/* The failure rule, retries and the attempt log build on this
		 * outcome; for now the failed attempt is recorded in the log. */
		log_warn("delivery failed", "webhook=%s event=%s webhook_id=%s status=%ld error=\"%s\" duration_ms=%" PRId64,
			 job->webhook_id, event_type_name(job->type), job->message_id,
			 res->status, res->error, res->duration_ms);
	}
	free(job);
	if (--ie->remaining == 0) {
		if (ie->cancelled == 0)
			finish_ticket(p, ie->ticket);
		free(ie);
	}
	after_completion(p);
}

/* Renders and submits one delivery of ev to wh. Returns 0, or -1 when it
 * could not be submitted (out of memory or unrenderable). */
static int submit_delivery(struct pipeline *p, struct inflight_event *ie,
			   const struct event *ev, const struct webhook *wh)
{
	struct render_input in;
	struct deliver_request req;
	struct delivery_job *job;
	size_t body_len;
	char *body;

	job = calloc(1, sizeof(*job));
	if (!job)
		return -1;
	job->p = p;
	job->ie = ie;
	job->type = ev->type;
	snprintf(job->webhook_id, sizeof(job->webhook_id), "%s", wh->id);
	sign_message_id(ev->source, ev->id, wh->id, "", job->message_id);

	memset(&in, 0, sizeof(in));
	in.message_id = job->message_id;
	in.event = ev->type;
	in.company_id = ev->company_id;
	in.webhook_id = wh->id;
	in.occurred_at = ev->time;
	in.data = ev->data;
	in.data_len = ev->data_len;
	in.period = PERIOD_NONE;

	buf_reset(&p->body);
	if (render_json(&in, &p->body) < 0) {
		log_error("cannot render payload", "webhook=%s event_id=%s", wh->id, ev->id);
		free(job);
		return -1;
	}
	body = buf_detach(&p->body, &body_len);

	memset(&req, 0, sizeof(req));
	req.target = wh->target;
	req.body = body;
	req.body_len = body_len;
	req.content_type = "application/json";
	req.message_id = job->message_id;
	req.secret = wh->secret;
	if (deliver_submit(p->deliver, &req, delivery_done, job) < 0) {
		free(job);
		return -1;
	}
	return 0;
}

/* ---- consuming ------------------------------------------------------- */

static void on_message(void *arg, const struct kafka_message *m)
{
	struct pipeline *p = arg;
	const struct webhook *const *hooks;
	struct inflight_event *ie;
	struct offsets_ticket t;
	struct event ev;
	char err[256];
	size_t n, i;

	p->counters.consumed++;
	if (offsets_track(p->offsets, m->topic, m->partition, m->offset, now_ms(), &t) < 0) {
		/* Out of memory or an offset behind one already tracked (a
		 * redelivery after a seek): never store past it. */
		log_error("cannot track message", "topic=%s partition=%" PRId32 " offset=%" PRId64,
			  m->topic, m->partition, m->offset);
		return;
	}

	if (event_decode(m->value, m->value_len, m->headers, m->n_headers, &ev, err,
			 sizeof(err)) < 0) {
		struct dlq_job *j = dlq_job_new(p, m, err, t);

		log_warn("invalid event, dead-lettering", "topic=%s partition=%" PRId32 " offset=%" PRId64 " reason=\"%s\"",
			 m->topic, m->partition, m->offset, err);
		if (!j) {
			log_error("out of memory copying dead letter", "offset=%" PRId64, m->offset);
			return;
		}
		p->dlq_pending++;
		dlq_send(j);
		return;
	}

	n = match_find(registry_index(p->reg), ev.company_id, ev.type, &hooks);
	if (n == 0) {
		p->counters.unmatched++;
		finish_ticket(p, t);
		event_release(&ev);
		return;
	}

	ie = calloc(1, sizeof(*ie));
	if (!ie) {
		log_error("out of memory for event", "offset=%" PRId64, m->offset);
		event_release(&ev);
		return;
	}
	ie->ticket = t;
	ie->taken_ms = now_ms();
	/* Hold one reference while submitting so that no completion can
	 * finish the ticket before every delivery is submitted. */
	ie->remaining = 1;
	for (i = 0; i < n; i++) {
		ie->remaining++;
		if (submit_delivery(p, ie, &ev, hooks[i]) < 0) {
			/* Leave the ticket unfinished: the event is consumed
			 * again after a restart rather than silently lost. */
			ie->remaining--;
			ie->cancelled++;
		}
	}
	event_release(&ev);
	if (--ie->remaining == 0) {
		if (ie->cancelled == 0)
			finish_ticket(p, ie->ticket);
		free(ie);
	}
	if (over_bound(p))
		set_intake(p, 0);
}

static void on_assigned(void *arg, const struct kafka_partition *parts, size_t n)
{
	size_t i;

	(void)arg;
	for (i = 0; i < n; i++)
		log_info("partition assigned", "topic=%s partition=%" PRId32,
			 parts[i].topic, parts[i].partition);
}

static size_t in_flight(void *arg, const char *topic, int32_t partition)
{
	struct pipeline *p = arg;

	return offsets_pending(p->offsets, topic, partition);
}

static void on_revoked(void *arg, const struct kafka_partition *parts, size_t n,
		       int lost)
{
	struct pipeline *p = arg;
	size_t i;

	for (i = 0; i < n; i++) {
		log_info(lost ? "partition lost" : "partition revoked",
			 "topic=%s partition=%" PRId32 " unfinished=%zu", parts[i].topic,
			 parts[i].partition,
			 offsets_pending(p->offsets, parts[i].topic, parts[i].partition));
		offsets_revoke(p->offsets, parts[i].topic, parts[i].partition);
	}
}

static void on_closed(void *arg)
{
	struct pipeline *p = arg;

	kafka_flush(p->kafka, 5000);
	p->state = PIPELINE_STOPPED;
	log_info("consumer closed", "consumed=%" PRIu64, p->counters.consumed);
	if (p->stopped)
		p->stopped(p->stopped_arg);
}

/* ---- lifecycle ------------------------------------------------------- */

static void begin_close(struct pipeline *p)
{
	if (p->state >= PIPELINE_CLOSING)
		return;
	p->state = PIPELINE_CLOSING;
	if (p->grace_timer)
		event_del(p->grace_timer);
	log_info("leaving the consumer group", "%s", "");
	kafka_close(p->kafka);
}

static void after_completion(struct pipeline *p)
{
	if (p->state == PIPELINE_RUNNING) {
		size_t pending = deliver_pending(p->deliver);

		if (!p->intake_on &&
		    pending * PIPELINE_RESUME_DEN <=
			    (size_t)p->cfg->max_in_flight * PIPELINE_RESUME_NUM)
			set_intake(p, 1);
	} else if (p->state == PIPELINE_DRAINING) {
		if (deliver_pending(p->deliver) == 0 && p->dlq_pending == 0)
			begin_close(p);
	}
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pipeline *p = arg;

	(void)fd;
	(void)what;
	if (p->state != PIPELINE_DRAINING)
		return;
	log_warn("shutdown grace period over, giving up in-flight deliveries",
		 "pending=%zu", deliver_pending(p->deliver));
	/* Cancelled deliveries leave their events unfinished: they are
	 * consumed again by whoever owns the partition next. */
	deliver_cancel_all(p->deliver);
	begin_close(p);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pipeline *p = arg;

	(void)fd;
	(void)what;
	if (p->state == PIPELINE_WAITING && registry_is_loaded(p->reg)) {
		p->state = PIPELINE_RUNNING;
		log_info("webhook registry loaded, consuming", "%s", "");
		set_intake(p, 1);
	}
}

struct pipeline *pipeline_new(struct event_base *base, const struct config *cfg,
			      struct store *store, struct registry *reg, char *err,
			      size_t errlen)
{
	struct kafka_callbacks cb;
	struct pipeline *p;
	struct timeval tv = { 0, PIPELINE_TICK_MS * 1000 };

	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->base = base;
	p->cfg = cfg;
	p->store = store;
	p->reg = reg;
	buf_init(&p->body, 0);
	p->offsets = offsets_new();
	p->deliver = deliver_new(base, cfg, err, errlen);
	if (!p->offsets || !p->deliver)
		goto fail;

	memset(&cb, 0, sizeof(cb));
	cb.on_message = on_message;
	cb.on_assigned = on_assigned;
	cb.in_flight = in_flight;
	cb.on_revoked = on_revoked;
	cb.on_closed = on_closed;
	cb.arg = p;
	p->kafka = kafka_new(base, cfg, &cb, err, errlen);
	if (!p->kafka)
		goto fail;

	p->tick = event_new(base, -1, EV_PERSIST, tick_cb, p);
	p->grace_timer = evtimer_new(base, grace_cb, p);
	if (!p->tick || !p->grace_timer || event_add(p->tick, &tv) < 0) {
		snprintf(err, errlen, "cannot create pipeline timers");
		goto fail;
	}
	return p;
fail:
	pipeline_free(p);
	return NULL;
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	if (p->tick)
		event_free(p->tick);
	if (p->grace_timer)
		event_free(p->grace_timer);
	if (p->kafka)
		kafka_free(p->kafka);
	if (p->deliver)
		deliver_free(p->deliver);
	if (p->offsets)
		offsets_free(p->offsets);
	buf_release(&p->body);
	free(p);
}

void pipeline_start(struct pipeline *p)
{
	if (p->state == PIPELINE_IDLE)
		p->state = PIPELINE_WAITING;
}

void pipeline_stop(struct pipeline *p, pipeline_stopped_fn *stopped, void *arg)
{
	struct timeval tv;

	p->stopped = stopped;
	p->stopped_arg = arg;
	if (p->state >= PIPELINE_DRAINING)
		return;
	if (p->state != PIPELINE_RUNNING) {
		p->state = PIPELINE_DRAINING;
		begin_close(p);
		return;
	}
	p->state = PIPELINE_DRAINING;
	set_intake(p, 0);
	log_info("draining in-flight deliveries", "pending=%zu grace_ms=%ld",
		 deliver_pending(p->deliver), p->cfg->shutdown_grace_ms);
	tv.tv_sec = p->cfg->shutdown_grace_ms / 1000;
	tv.tv_usec = (p->cfg->shutdown_grace_ms % 1000) * 1000;
	evtimer_add(p->grace_timer, &tv);
	after_completion(p);
}

int pipeline_ready(const struct pipeline *p)
{
	return p->state == PIPELINE_RUNNING && kafka_in_group(p->kafka);
}

void pipeline_metrics(const struct pipeline *p, struct buf *out)
{
	static const char *const outcome_names[] = {
		"success", "http_status", "timeout", "connect", "tls",
		"refused", "cancelled", "other",
	};
	size_t i;

	buf_adds(out, "# HELP promo_webhooks_events_consumed_total Kafka messages taken from the event topics.\n"
		      "# TYPE promo_webhooks_events_consumed_total counter\n");
	buf_addf(out, "promo_webhooks_events_consumed_total %" PRIu64 "\n", p->counters.consumed);
	buf_adds(out, "# HELP promo_webhooks_events_dead_lettered_total Invalid messages published to the dead-letter topic.\n"
		      "# TYPE promo_webhooks_events_dead_lettered_total counter\n");
	buf_addf(out, "promo_webhooks_events_dead_lettered_total %" PRIu64 "\n", p->counters.dead_lettered);
	buf_adds(out, "# HELP promo_webhooks_events_unmatched_total Valid events no enabled webhook subscribed to.\n"
		      "# TYPE promo_webhooks_events_unmatched_total counter\n");
	buf_addf(out, "promo_webhooks_events_unmatched_total %" PRIu64 "\n", p->counters.unmatched);
	buf_adds(out, "# HELP promo_webhooks_deliveries_total Delivery attempts by outcome.\n"
		      "# TYPE promo_webhooks_deliveries_total counter\n");
	for (i = 0; i <= DELIVER_OTHER; i++)
		buf_addf(out, "promo_webhooks_deliveries_total{outcome=\"%s\"} %" PRIu64 "\n",
			 outcome_names[i], p->counters.deliveries[i]);
	buf_adds(out, "# HELP promo_webhooks_deliveries_in_flight Deliveries queued or running.\n"
		      "# TYPE promo_webhooks_deliveries_in_flight gauge\n");
	buf_addf(out, "promo_webhooks_deliveries_in_flight %zu\n", deliver_pending(p->deliver));
	buf_adds(out, "# HELP promo_webhooks_events_in_flight Consumed events whose offset is not yet stored.\n"
		      "# TYPE promo_webhooks_events_in_flight gauge\n");
	buf_addf(out, "promo_webhooks_events_in_flight %zu\n", offsets_pending_total(p->offsets));
	kafka_metrics(p->kafka, out);
}
