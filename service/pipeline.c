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
 *
 * Size: the stage order and the at-least-once bookkeeping, with the retry
 * path (claim, submit, record) that shares the delivery job; the dead-letter
 * copier, the notice relay and the metrics are modules of their own.
 */
#include "promo_webhooks/pipeline.h"
#include "promo_webhooks/rfc3339.h"
#include "promo_webhooks/prom.h"
#include "promo_webhooks/fault.h"
#include "promo_webhooks/clock.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "promo_webhooks/backoff.h"
#include "promo_webhooks/deadletter.h"
#include "promo_webhooks/deliver.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/kafka.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/match.h"
#include "promo_webhooks/noticerelay.h"
#include "promo_webhooks/offsets.h"
#include "promo_webhooks/pmetrics.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/render.h"
#include "promo_webhooks/retryjob.h"
#include "promo_webhooks/retryrelay.h"
#include "promo_webhooks/sign.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_outcomes.h"
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/store_hooks.h"

/* Intake resumes when pending deliveries fall to this share of the bound. */
#define PIPELINE_RESUME_NUM 3
#define PIPELINE_RESUME_DEN 4
#define PIPELINE_TICK_MS 100
/* How often due retries and pending notices are claimed from Redis. */
#define PIPELINE_CLAIM_EVERY_MS 500
/* Retries claimed at once, and the share of the in-flight bound they may
 * take (first attempts keep the rest). */
#define PIPELINE_RETRY_BATCH 256
#define PIPELINE_RETRY_SHARE 4
/* A claimed retry is someone else's to take after its attempt could have
 * finished (the delivery timeout) and this margin. */
#define PIPELINE_RETRY_LEASE_MARGIN_MS 30000
/* Recording a failure in Redis is retried with this backoff cap. */
#define PIPELINE_RECORD_MAX_BACKOFF_MS 5000
/* Successful first attempts are logged to Redis every tick, or sooner when
 * this many wait: the store coalesces them per webhook (a busy webhook's
 * successes become one write of its newest 100), so the larger the batch,
 * the less Redis works per delivery. */
#define PIPELINE_ATTEMPT_BATCH 2048
#define PIPELINE_EVENT_ID_MAX 128
/* A first attempt whose target already has this many times its running
 * bound waiting is parked in Redis as a retry job due after
 * PIPELINE_PARK_DELAY_MS: a slow or dead target keeps its backlog out of
 * memory and out of the in-flight bound that every other target shares. */
#define PIPELINE_PARK_FACTOR 2
#define PIPELINE_PARK_DELAY_MS 5000
/* At exit, published notices' acknowledgements get this long to reach
 * Redis (the shutdown grace is spent by then; the pod's termination grace
 * leaves room for it). */
#define PIPELINE_ACK_DRAIN_MS 3000

/* A partition assigned to this member, for the per-partition metrics. */
struct assigned_partition {
	char *topic;
	int32_t partition;
};

enum pipeline_state {
	PIPELINE_IDLE,     /* created, not started */
	PIPELINE_WAITING,  /* started, waiting for the registry's first load */
	PIPELINE_RUNNING,  /* consuming */
	PIPELINE_DRAINING, /* stop requested: intake off, deliveries finishing */
	PIPELINE_CLOSING,  /* leaving the group */
	PIPELINE_STOPPED,
};

/* The deliveries one event caused; finishes its ticket when the last one
 * has a recorded outcome. Owns the decoded event they render from. */
struct inflight_event {
	struct offsets_ticket ticket;
	struct event ev;
	unsigned remaining;  /* parts without an outcome yet: deliveries, and
			      * the promotion state of Promotion.* events */
	unsigned unfinished; /* parts given up or not recorded */
};

/* One delivery attempt, from submission until its outcome is recorded. */
struct delivery_job {
	struct pipeline *p;
	struct inflight_event *ie;    /* a first attempt: its event, else NULL */
	struct retry_claim *retry;  /* a retry: its job, else NULL */
	struct delivery_job *rprev, *rnext; /* retries: in p->retry_jobs */
	int attempt;                  /* 1 for the first attempt */
	char webhook_id[WEBHOOK_ID_LEN + 1];
	char message_id[SIGN_MESSAGE_ID_LEN];
	struct deliver_result res;    /* the outcome while it is recorded */
	char *response;               /* its response head (res.response) */
	int parking;                  /* being parked, not recorded */
	struct backoff record;        /* retries of recording the outcome */
	char *sent_token;             /* a retry: the claim token its outcome
				       * was last sent to Redis with */
	int64_t park_due_ms;          /* parking: when it is due, fixed at the
				       * first send (one retry id however
				       * often it is sent) */
};

/* What a delivery renders from, whether first attempt or retry. */
struct payload_src {
	enum event_type type;
	const char *event_id;
	const char *company_id;
	const char *occurred_at;
	const char *data;
	size_t data_len;
	enum period_unit period;
	int64_t period_value;
};

/* A successful first attempt waiting for the next batch to the log. */
struct logged_attempt {
	char webhook_id[WEBHOOK_ID_LEN + 1];
	char event_id[PIPELINE_EVENT_ID_MAX + 1];
	int64_t at_ms;
	long status;
	int64_t duration_ms;
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
	struct event *claim_timer;
	struct event *grace_timer;
	struct event *ack_timer;  /* waits for notice acks at exit */
	int64_t ack_deadline_ms;  /* monotonic */
	enum pipeline_state state;
	int intake_on;
	struct deadletter *dlq; /* the dead-letter copier */
	size_t jobs_live;       /* delivery jobs without a recorded outcome */
	size_t retries_live;    /* of which retries */
	int retry_squeezed;     /* the last claim was cut short by the bound
				 * while retries wait in Redis */
	size_t claimed_started; /* claimed retries started since the last claim */
	size_t claimed_refused; /* ... and put back: their target saturated */
	struct delivery_job *retry_jobs; /* those retries, by retry id once */
	struct retryrelay *retries; /* due retries from Redis */
	int counting;           /* a store_counts is in flight */
	struct noticerelay *notices; /* the notice outbox's relay */
	struct logged_attempt attempts[PIPELINE_ATTEMPT_BATCH];
	struct store_attempt attempt_batch[PIPELINE_ATTEMPT_BATCH]; /* flush scratch */
	size_t n_attempts;
	struct buf body;        /* render scratch, reused per delivery */
	struct buf scratch;     /* retry job encoding */
	struct assigned_partition *assigned;
	size_t n_assigned;
	struct pmetrics counters; /* pmetrics.h */
	pipeline_stopped_fn *stopped;
	void *stopped_arg;
};

/* A message has its outcome: let its partition's stored offset advance. */
static void finish_ticket(struct pipeline *p, struct offsets_ticket t)
{
	const char *topic;
	int32_t partition;
	int64_t next;

	if (offsets_done(p->offsets, t, &topic, &partition, &next) == 1)
		kafka_store_offset(p->kafka, topic, partition, next);
}

/* Everything held per consumed event counts toward
 * PROMO_WEBHOOKS_MAX_IN_FLIGHT, not only the deliveries queued or running:
 * delivery jobs waiting to record their outcome (retried with backoff
 * while Redis is away), promotion-state writes and dead-letter copies. So
 * while the store cannot take outcomes, intake stops once the bound is
 * reached and memory stays within it (README, "Backpressure"). Retries
 * claimed from Redis count too, from the moment the claim is asked for
 * (retryrelay_pending): they are deliveries in flight like the rest. */
static size_t held(const struct pipeline *p)
{
	return p->jobs_live + deadletter_pending(p->dlq) + retryrelay_pending(p->retries);
}

/* The retries' share of the bound (PIPELINE_RETRY_SHARE). */
static size_t retry_cap(const struct pipeline *p)
{
	return (size_t)p->cfg->max_in_flight / PIPELINE_RETRY_SHARE + 1;
}

/* What first attempts leave free of the bound for retries: while due
 * retries that could run were kept out by a full bound at the last claim
 * (p->retry_squeezed), intake stops short of the bound by the unused part
 * of the retries' share, so that a backlog of first attempts does not keep
 * them out for as long as it lasts. Otherwise first attempts may use the
 * whole bound. */
static size_t retry_reserve(const struct pipeline *p)
{
	size_t cap = retry_cap(p);
	size_t used = p->retries_live + retryrelay_pending(p->retries);

	if (!p->retry_squeezed || used >= cap)
		return 0;
	return cap - used;
}

static int over_bound(const struct pipeline *p)
{
	return held(p) + retry_reserve(p) >= (size_t)p->cfg->max_in_flight;
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

/* A copy on the dead-letter topic ended: the broker has it (or it can
 * never be made: logged and counted by the copier, and skipping it is the
 * only way the partition moves on), so the message's offset may advance; a
 * copy given up at shutdown leaves it behind (the message is consumed again
 * after the restart). part is the event whose promotion state could not be
 * stored, the copy being that part of it, or NULL for an invalid
 * message. */
static void event_part_done(struct pipeline *p, struct inflight_event *ie, int recorded);

static void dead_lettered(void *arg, struct offsets_ticket ticket, void *part,
			  enum deadletter_end end)
{
	struct pipeline *p = arg;

	if (part)
		event_part_done(p, part, end != DEADLETTER_GIVEN_UP);
	else if (end != DEADLETTER_GIVEN_UP)
		finish_ticket(p, ticket);
	after_completion(p);
}

/* ---- deliveries ------------------------------------------------------ */

static void job_src(const struct delivery_job *job, struct payload_src *src)
{
	memset(src, 0, sizeof(*src));
	if (job->ie) {
		const struct event *ev = &job->ie->ev;

		src->type = ev->type;
		src->event_id = ev->id;
		src->company_id = ev->company_id;
		src->occurred_at = ev->time;
		src->data = ev->data;
		src->data_len = ev->data_len;
		src->period = PERIOD_NONE;
	} else {
		const struct retry_job *rj = &job->retry->job;

		src->type = rj->type;
		src->event_id = rj->event_id;
		src->company_id = rj->company_id;
		src->occurred_at = rj->occurred_at;
		src->data = rj->data;
		src->data_len = rj->data_len;
		src->period = rj->period;
		src->period_value = rj->period_value;
	}
}

/*
 * The end of a job: its outcome is recorded (recorded=1), or it was given
 * up (recorded=0: cancelled at shutdown, or not recordable). A first
 * attempt counts toward its event's ticket; an unrecorded one keeps the
 * ticket unfinished so that the event is consumed again. An unrecorded
 * retry stays leased in Redis and is claimed again when the lease ends.
 */
/* One part of an event has its outcome; the last one finishes the ticket
 * (unless a part was given up) and frees the event. */
static void event_part_done(struct pipeline *p, struct inflight_event *ie, int recorded)
{
	if (!recorded)
		ie->unfinished++;
	if (--ie->remaining == 0) {
		if (ie->unfinished == 0)
			finish_ticket(p, ie->ticket);
		event_release(&ie->ev);
		free(ie);
	}
}

static void job_finish(struct delivery_job *job, int recorded)
{
	struct pipeline *p = job->p;

	if (job->ie)
		event_part_done(p, job->ie, recorded);
	if (job->retry) {
		if (job->rprev)
			job->rprev->rnext = job->rnext;
		else if (p->retry_jobs == job)
			p->retry_jobs = job->rnext;
		if (job->rnext)
			job->rnext->rprev = job->rprev;
		p->retries_live--;
		retry_claim_free(job->retry);
	}
	backoff_release(&job->record);
	free(job->response);
	free(job->sent_token);
	free(job);
	p->jobs_live--;
	after_completion(p);
}

static void flush_attempt_log(struct pipeline *p)
{
	struct store_attempt *batch = p->attempt_batch;
	size_t i;

	for (i = 0; i < p->n_attempts; i++) {
		const struct logged_attempt *la = &p->attempts[i];

		memset(&batch[i], 0, sizeof(batch[i]));
		batch[i].webhook_id = la->webhook_id;
		batch[i].event_id = la->event_id;
		batch[i].attempt = 1;
		batch[i].at_ms = la->at_ms;
		batch[i].status = la->status;
		batch[i].duration_ms = la->duration_ms;
	}
	if (p->n_attempts)
		store_log_attempts(p->store, batch, p->n_attempts);
	p->n_attempts = 0;
}

/* Copies src into dst of size bytes, cut to fit: snprintf("%s") was two
 * or three per delivery. */
static void copy_cut(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* A successful first attempt goes to the attempt log in the next batch:
 * the success path does not wait for Redis. */
static void log_success(struct pipeline *p, const struct delivery_job *job,
			const char *event_id, const struct deliver_result *res)
{
	struct logged_attempt *la;

	if (p->n_attempts == PIPELINE_ATTEMPT_BATCH)
		flush_attempt_log(p);
	la = &p->attempts[p->n_attempts++];
	copy_cut(la->webhook_id, sizeof(la->webhook_id), job->webhook_id);
	copy_cut(la->event_id, sizeof(la->event_id), event_id);
	la->at_ms = res->started_ms;
	la->status = res->status;
	la->duration_ms = res->duration_ms;
}

static void record_failure(struct delivery_job *job);
static void record_retry_success(struct delivery_job *job);
static void park_job(struct delivery_job *job);

/* A retry's outcome is about to be sent under its claim's token: noted, so
 * that a "stale" answer can tell a claim taken by someone else from this
 * replica's own claim of the same retry, taken while the send was on its
 * way (Redis slow or paused: the claim ran first, and the running job took
 * the new token, see submit_retry). */
static void note_sent_token(struct delivery_job *job)
{
	free(job->sent_token);
	job->sent_token = job->retry && job->retry->token ? strdup(job->retry->token) : NULL;
}

/* Whether job's claim changed to one of this replica's since its outcome
 * was sent (logged then): the caller sends the outcome again under the new
 * token (it was not recorded: a stale answer changes nothing). */
static int claimed_again_here(const struct delivery_job *job)
{
	if (!job->retry || !job->retry->token || !job->sent_token ||
	    strcmp(job->sent_token, job->retry->token) == 0)
		return 0;
	log_info("retry claimed again here while its outcome was sent; sent again under the new claim",
		 "webhook=%s retry=%s attempt=%d", job->webhook_id, job->retry->retry_id,
		 job->attempt);
	return 1;
}

static void record_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delivery_job *job = arg;

	(void)fd;
	(void)what;
	if (job->parking)
		park_job(job);
	else
		record_failure(job);
}

/* Redis did not take the failure: try again, unless the process is
 * closing (then the event or retry is redone after the restart). */
static void record_later(struct delivery_job *job, const char *why)
{
	struct pipeline *p = job->p;

	p->counters.redis_errors++;
	if (p->state >= PIPELINE_CLOSING) {
		log_warn("failure not recorded at shutdown; it is delivered again later",
			 "webhook=%s reason=\"%s\"", job->webhook_id, why);
		job_finish(job, 0);
		return;
	}
	if (backoff_arm(&job->record, p->base, 100, PIPELINE_RECORD_MAX_BACKOFF_MS, record_retry_cb,
			job) < 0) {
		job_finish(job, 0);
		return;
	}
	log_warn("cannot record delivery outcome, retrying", "webhook=%s reason=\"%s\" backoff_ms=%d",
		 job->webhook_id, why, job->record.ms);
}

/* Redis refused to take job's outcome for good (a script error: a bug or
 * a foreign writer). Trying again cannot help and would hold the
 * partition: logged, counted, and the job ends as if recorded. */
static void outcome_given_up(struct delivery_job *job, const char *what)
{
	struct pipeline *p = job->p;
	struct payload_src src;

	job_src(job, &src);
	p->counters.redis_errors++;
	p->counters.permanent[PMETRICS_PERM_OUTCOME_NOT_RECORDED]++;
	log_error("redis refused a delivery outcome for good, given up",
		  "webhook=%s event_id=%s attempt=%d outcome=%s", job->webhook_id,
		  src.event_id, job->attempt, what);
	job_finish(job, 1);
}

static void failure_recorded(void *arg, enum store_status status,
			     enum store_failure_result result)
{
	struct delivery_job *job = arg;
	struct pipeline *p = job->p;

	if (status == STORE_ERROR) {
		outcome_given_up(job, "failure");
		return;
	}
	if (status != STORE_OK) {
		record_later(job, store_status_name(status));
		return;
	}
	switch (result) {
	case STORE_FAILURE_DISABLED:
		p->counters.disabled++;
		log_warn("webhook disabled by the failure rule", "webhook=%s threshold=%ld window_s=%ld",
			 job->webhook_id, p->cfg->failure_threshold, p->cfg->failure_window_s);
		fault_point(p->cfg, CONFIG_FAULT_EXIT_AFTER_DISABLE,
			    "test fault: exiting right after the disable");
		break;
	case STORE_FAILURE_COUNTED:
		if (job->attempt <= (int)p->cfg->n_retries)
			p->counters.retries_scheduled++;
		break;
	case STORE_FAILURE_INACTIVE:
		break;
	case STORE_FAILURE_DUPLICATE:
		log_info("failure recorded already by a send whose answer was lost",
			 "webhook=%s attempt=%d", job->webhook_id, job->attempt);
		break;
	case STORE_FAILURE_STALE:
		if (claimed_again_here(job)) {
			record_failure(job);
			return;
		}
		/* Its lease ended and the retry was claimed again: the
		 * current claim's attempt counts, this one must not (one
		 * real failure, one count; one retry chain). */
		p->counters.stale_outcomes++;
		log_warn("retry outcome under a stale claim dropped",
			 "webhook=%s retry=%s attempt=%d", job->webhook_id,
			 job->retry ? job->retry->retry_id : "", job->attempt);
		break;
	}
	job_finish(job, 1);
}

/* Encodes into p->scratch the retry job that makes attempt number
 * `attempt` of job's delivery. Returns 0 or -1. */
static int encode_job(struct pipeline *p, const struct delivery_job *job, int attempt)
{
	struct payload_src src;
	struct retry_job rj;

	job_src(job, &src);
	memset(&rj, 0, sizeof(rj));
	rj.webhook_id = (char *)(uintptr_t)job->webhook_id;
	rj.message_id = (char *)(uintptr_t)job->message_id;
	rj.event_id = (char *)(uintptr_t)src.event_id;
	rj.type = src.type;
	rj.company_id = (char *)(uintptr_t)src.company_id;
	rj.occurred_at = (char *)(uintptr_t)src.occurred_at;
	rj.data = (char *)(uintptr_t)src.data;
	rj.data_len = src.data_len;
	rj.period = src.period;
	rj.period_value = src.period_value;
	rj.attempt = attempt;
	buf_reset(&p->scratch);
	return retry_job_encode(&rj, &p->scratch);
}

/*
 * Records a failed attempt in one atomic step: the attempt log, the failure
 * window, the disable and its notice, and the next retry when the schedule
 * has one. Only then is the attempt's outcome recorded.
 */
static void record_failure(struct delivery_job *job)
{
	struct pipeline *p = job->p;
	struct store_failure f;
	struct payload_src src;
	char at_text[40];
	char attempt_id[SIGN_MESSAGE_ID_LEN + 48];
	int next = job->attempt; /* index of the next retry's delay */

	job_src(job, &src);
	rfc3339_format(job->res.started_ms, at_text, sizeof(at_text));
	memset(&f, 0, sizeof(f));
	f.attempt.webhook_id = job->webhook_id;
	f.attempt.event_id = src.event_id;
	f.attempt.attempt = job->attempt;
	f.attempt.at_ms = job->res.started_ms;
	f.attempt.status = job->res.status;
	f.attempt.error = job->res.error[0] ? job->res.error : "failed";
	f.attempt.duration_ms = job->res.duration_ms;
	f.attempt.response = job->res.response;
	f.attempt.response_len = job->res.response_len;
	f.window_ms = (int64_t)p->cfg->failure_window_s * 1000;
	f.threshold = p->cfg->failure_threshold;
	f.at_text = at_text;
	f.retry_id = job->retry ? job->retry->retry_id : NULL;
	f.retry_token = job->retry ? job->retry->token : NULL;
	/* The attempt's name: a record sent again after a lost answer is
	 * not counted twice. */
	snprintf(attempt_id, sizeof(attempt_id), "%s:%d:%" PRId64, job->message_id, job->attempt,
		 job->res.started_ms);
	f.attempt_id = attempt_id;

	if (next <= (int)p->cfg->n_retries &&
	    encode_job(p, job, job->attempt + 1) == 0) {
		f.next_job = buf_str(&p->scratch);
		f.next_due_ms = clock_wall_ms() + (int64_t)p->cfg->retry_schedule_s[next - 1] * 1000;
	}
	note_sent_token(job);
	if (store_record_failure(p->store, &f, failure_recorded, job) < 0)
		record_later(job, "out of memory");
}

static void parked(void *arg, enum store_status status, int64_t version)
{
	struct delivery_job *job = arg;

	(void)version;
	if (status == STORE_ERROR) {
		outcome_given_up(job, "parked");
		return;
	}
	if (status != STORE_OK) {
		record_later(job, store_status_name(status));
		return;
	}
	job->p->counters.parked++;
	job_finish(job, 1);
}

/* Parks a first attempt in Redis as a retry job (same attempt number, same
 * webhook-id) due a little later: its outcome, for the offset, is that it
 * is safely scheduled. */
static void park_job(struct delivery_job *job)
{
	struct pipeline *p = job->p;
	char name[SIGN_MESSAGE_ID_LEN + 24];

	if (!job->park_due_ms)
		job->park_due_ms = clock_wall_ms() + PIPELINE_PARK_DELAY_MS;
	snprintf(name, sizeof(name), "park-%s-%d", job->message_id, job->attempt);
	if (encode_job(p, job, job->attempt) < 0 ||
	    store_retry_defer(p->store, job->webhook_id, name, buf_str(&p->scratch),
			      job->park_due_ms, parked, job) < 0)
		record_later(job, "cannot park delivery");
}

static void retry_success_recorded(void *arg, enum store_status status, int64_t version)
{
	struct delivery_job *job = arg;
	struct pipeline *p = job->p;

	if (status != STORE_OK) {
		/* The retry stays leased and is delivered once more later:
		 * at least once, with the same webhook-id. */
		p->counters.redis_errors++;
		log_warn("cannot record successful retry", "reason=%s", store_status_name(status));
	} else if (version == 0 && claimed_again_here(job)) {
		record_retry_success(job);
		return;
	} else if (version == 0) {
		p->counters.stale_outcomes++;
		log_warn("retry outcome under a stale claim dropped", "outcome=%s", "success");
	}
	job_finish(job, 1);
}

/* A retry's success: removes the retry under its claim and logs the
 * attempt. The job lives until Redis answered, so that a claim of the same
 * retry meanwhile finds it running here (submit_retry) instead of
 * starting it again. */
static void record_retry_success(struct delivery_job *job)
{
	struct pipeline *p = job->p;
	struct payload_src src;
	struct store_attempt a;

	job_src(job, &src);
	memset(&a, 0, sizeof(a));
	a.webhook_id = job->webhook_id;
	a.event_id = src.event_id;
	a.attempt = job->attempt;
	a.at_ms = job->res.started_ms;
	a.status = job->res.status;
	a.duration_ms = job->res.duration_ms;
	note_sent_token(job);
	if (store_record_success(p->store, &a, job->retry->retry_id, job->retry->token,
				 retry_success_recorded, job) < 0) {
		/* Out of memory: still leased, delivered once more later. */
		p->counters.redis_errors++;
		job_finish(job, 1);
	}
}

static void delivery_done(void *arg, const struct deliver_result *res)
{
	struct delivery_job *job = arg;
	struct pipeline *p = job->p;
	struct payload_src src;

	job_src(job, &src);
	if (res->outcome <= DELIVER_OTHER && (unsigned)src.type < EVENT_TYPE_COUNT)
		p->counters.deliveries[src.type][res->outcome]++;
	if (res->outcome == DELIVER_CANCELLED) {
		job_finish(job, 0);
		return;
	}
	pmetrics_observe(&p->counters, src.type, res->duration_ms);
	if (res->outcome == DELIVER_OK) {
		if (job->retry) {
			job->res = *res;
			job->res.response = NULL;
			job->res.response_len = 0;
			record_retry_success(job);
			return;
		}
		log_success(p, job, src.event_id, res);
		job_finish(job, 1);
		return;
	}
	log_info("delivery failed", "webhook=%s event=%s webhook_id=%s attempt=%d status=%ld error=\"%s\" duration_ms=%" PRId64,
		 job->webhook_id, event_type_name(src.type), job->message_id, job->attempt,
		 res->status, res->error, res->duration_ms);
	job->res = *res;
	job->res.response = NULL;
	job->res.response_len = 0;
	if (res->response && res->response_len) {
		/* Kept for the attempt log: res is gone after this callback. */
		job->response = malloc(res->response_len);
		if (job->response) {
			memcpy(job->response, res->response, res->response_len);
			job->res.response = job->response;
			job->res.response_len = res->response_len;
		}
	}
	record_failure(job);
}

/* A claimed retry's lease: PROMO_WEBHOOKS_RETRY_LEASE_MS, or the time its
 * attempt may take and a margin. */
static int64_t retry_lease_ms(const struct pipeline *p)
{
	if (p->cfg->retry_lease_ms > 0)
		return p->cfg->retry_lease_ms;
	return p->cfg->delivery_timeout_ms + PIPELINE_RETRY_LEASE_MARGIN_MS;
}

static void lease_renewed(void *arg, enum store_status status, int64_t renewed)
{
	struct pipeline *p = arg;

	if (status != STORE_OK)
		p->counters.redis_errors++;
	(void)renewed; /* a stale claim: its outcome is dropped when recorded */
}

/* A retry's attempt leaves the target's queue: its lease counts from now,
 * not from the claim, so a long queue wait does not let another claim
 * take it while it runs. */
static void retry_started(void *arg)
{
	struct delivery_job *job = arg;
	struct pipeline *p = job->p;

	if (store_retry_renew(p->store, job->retry->retry_id, job->retry->token,
			      clock_wall_ms() + retry_lease_ms(p), lease_renewed, p) < 0)
		p->counters.redis_errors++;
}

/* Renders and submits one delivery of job to wh. Returns 0, or -1 when it
 * could not be submitted (out of memory or unrenderable); then the caller
 * still owns job. */
static int submit_job(struct pipeline *p, struct delivery_job *job,
		      const struct webhook *wh)
{
	struct render_input in;
	struct deliver_request req;
	struct payload_src src;
	enum payload_type type;
	const char *content_type;
	size_t body_len;
	char *body;
	int rc;

	job_src(job, &src);
	memset(&in, 0, sizeof(in));
	in.message_id = job->message_id;
	in.event = src.type;
	in.company_id = src.company_id;
	in.webhook_id = wh->id;
	in.occurred_at = src.occurred_at;
	in.data = src.data;
	in.data_len = src.data_len;
	in.period = src.period;
	in.period_value = src.period_value;

	/* The webhook's payload data type, or else its company's setting. */
	type = wh->payload_type;
	if (type == PAYLOAD_DEFAULT)
		type = registry_settings(p->reg, wh->company_id)->payload_type;
	buf_reset(&p->body);
	if (render_body(type, &in, &p->body, &content_type) < 0) {
		/* Permanent for this event and webhook (a body over the cap):
		 * a failed attempt like any other, so that the failure rule
		 * applies and the partition does not stall behind it. */
		log_error("cannot render payload", "webhook=%s event_id=%s", wh->id, src.event_id);
		p->counters.permanent[PMETRICS_PERM_PAYLOAD_UNRENDERABLE]++;
		memset(&job->res, 0, sizeof(job->res));
		job->res.outcome = DELIVER_OTHER;
		job->res.started_ms = clock_wall_ms();
		snprintf(job->res.error, sizeof(job->res.error), "cannot render the %s payload",
			 type == PAYLOAD_XML ? "XML" : "JSON");
		p->jobs_live++;
		record_failure(job);
		return 0;
	}
	/* One allocation of the exact size; the render buffer keeps its
	 * capacity for the next delivery (detaching it cost two or three
	 * reallocs per delivery as it grew again). */
	body_len = p->body.len;
	body = malloc(body_len ? body_len : 1);
	if (!body)
		return -1;
	memcpy(body, buf_str(&p->body), body_len);

	memset(&req, 0, sizeof(req));
	req.target = wh->target;
	req.body = body;
	req.body_len = body_len;
	req.content_type = content_type;
	req.message_id = job->message_id;
	req.secret = wh->secret;
	req.max_queued = (size_t)p->cfg->max_in_flight_per_target * PIPELINE_PARK_FACTOR;
	if (job->retry)
		req.started = retry_started;
	rc = deliver_submit(p->deliver, &req, delivery_done, job);
	if (rc < 0)
		return -1;
	p->jobs_live++;
	if (job->retry && rc == DELIVER_SATURATED)
		p->claimed_refused++;
	else if (job->retry)
		p->claimed_started++;
	if (rc == DELIVER_SATURATED) {
		if (job->retry) {
			/* Still leased in Redis: claimed again when the lease
			 * ends, by when the target may have room. */
			job_finish(job, 0);
		} else {
			job->parking = 1;
			park_job(job);
		}
	}
	return 0;
}

/* The first attempt of ev (held by ie) to wh. */
static int submit_first(struct pipeline *p, struct inflight_event *ie,
			const struct webhook *wh)
{
	struct delivery_job *job = calloc(1, sizeof(*job));

	if (!job)
		return -1;
	job->p = p;
	job->ie = ie;
	job->attempt = 1;
	copy_cut(job->webhook_id, sizeof(job->webhook_id), wh->id);
	sign_message_id(ie->ev.source, ie->ev.id, wh->id, "", job->message_id);
	if (submit_job(p, job, wh) < 0) {
		free(job);
		return -1;
	}
	return 0;
}

/* ---- promotion state, for the derived period events ------------------ */

/* Recording a Promotion.* event's dates and data in Redis, a part of the
 * event like a delivery: its offset advances only once this is stored. */
struct promo_job {
	struct pipeline *p;
	struct inflight_event *ie;
	struct backoff retry;
};

static int promo_apply(struct promo_job *pj);

static void promo_finish(struct promo_job *pj, int recorded)
{
	struct pipeline *p = pj->p;

	event_part_done(p, pj->ie, recorded);
	backoff_release(&pj->retry);
	free(pj);
	p->jobs_live--;
	after_completion(p);
}

static void promo_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	/* The size was accepted the first time: it cannot change. */
	(void)promo_apply(arg);
}

static void promo_applied(void *arg, enum store_status status, int64_t version)
{
	struct promo_job *pj = arg;
	struct pipeline *p = pj->p;

	(void)version;
	if (status == STORE_OK) {
		promo_finish(pj, 1);
		return;
	}
	p->counters.redis_errors++;
	if (status == STORE_ERROR) {
		/* Refused for good: no period events for this change. */
		p->counters.permanent[PMETRICS_PERM_STATE_NOT_STORED]++;
		log_error("redis refused a promotion state for good, given up",
			  "promotion=%s company=%s event_id=%s", pj->ie->ev.promotion_id,
			  pj->ie->ev.company_id, pj->ie->ev.id);
		promo_finish(pj, 1);
		return;
	}
	if (p->state >= PIPELINE_CLOSING) {
		promo_finish(pj, 0);
		return;
	}
	if (backoff_arm(&pj->retry, p->base, 100, PIPELINE_RECORD_MAX_BACKOFF_MS, promo_retry_cb, pj) < 0) {
		promo_finish(pj, 0);
		return;
	}
	log_warn("cannot store promotion state, retrying", "promotion=%s reason=%s backoff_ms=%d",
		 pj->ie->ev.promotion_id, store_status_name(status), pj->retry.ms);
}

/* Returns 0, or STORE_PROMOTION_TOO_LARGE (nothing started, nothing
 * called back). */
static int promo_apply(struct promo_job *pj)
{
	const struct event *ev = &pj->ie->ev;
	struct store_promotion pr;
	int rc;

	memset(&pr, 0, sizeof(pr));
	pr.company_id = ev->company_id;
	pr.promotion_id = ev->promotion_id;
	pr.event_time_ms = ev->time_ms;
	pr.deleted = ev->type == EVENT_PROMOTION_DELETED;
	pr.data = ev->data;
	pr.data_len = ev->data_len;
	pr.has_start = ev->has_start;
	pr.start_ms = ev->start_ms;
	pr.has_end = ev->has_end;
	pr.end_ms = ev->end_ms;
	pr.retention_ms = (int64_t)pj->p->cfg->promotion_retention_s * 1000;
	rc = store_promotion_apply(pj->p->store, &pr, promo_applied, pj);
	if (rc == STORE_PROMOTION_TOO_LARGE)
		return rc;
	if (rc < 0)
		promo_applied(pj, STORE_UNAVAILABLE, 0); /* out of memory: passes */
	return 0;
}

/* Starts recording the promotion state of a Promotion.* event as one more
 * part of ie. Returns -1 (nothing started) when out of memory, or
 * STORE_PROMOTION_TOO_LARGE (nothing started) when the state can never be
 * stored. */
static int promo_start(struct pipeline *p, struct inflight_event *ie)
{
	struct promo_job *pj = calloc(1, sizeof(*pj));

	if (!pj)
		return -1;
	pj->p = p;
	pj->ie = ie;
	if (promo_apply(pj) == STORE_PROMOTION_TOO_LARGE) {
		free(pj);
		return STORE_PROMOTION_TOO_LARGE;
	}
	p->jobs_live++;
	return 0;
}

static int is_promotion_change(enum event_type t)
{
	return t == EVENT_PROMOTION_CREATED || t == EVENT_PROMOTION_UPDATED ||
	       t == EVENT_PROMOTION_DELETED;
}

/* ---- retries and notices, claimed from Redis --------------------------- */

/* The retry relay hands over a claimed retry of webhook wh. One this
 * replica is still running (its lease ended while it waited, and this
 * replica claimed it again) is not started twice: the running attempt
 * takes the new claim's token, so its outcome counts under the current
 * claim. */
static int submit_retry(void *arg, struct retry_claim *rc, const struct webhook *wh)
{
	struct pipeline *p = arg;
	struct delivery_job *job, *running;

	for (running = p->retry_jobs; running; running = running->rnext) {
		if (strcmp(running->retry->retry_id, rc->retry_id) == 0) {
			char *t = running->retry->token;

			running->retry->token = rc->token;
			rc->token = t;
			log_info("retry claimed again while its attempt runs here; not started twice",
				 "retry=%s", rc->retry_id);
			return -1;
		}
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return -1;
	job->p = p;
	job->retry = rc;
	job->attempt = rc->job.attempt;
	copy_cut(job->webhook_id, sizeof(job->webhook_id), wh->id);
	snprintf(job->message_id, sizeof(job->message_id), "%s", rc->job.message_id);
	/* Counted before submitting: a saturated target finishes the job
	 * inside submit_job. */
	p->retries_live++;
	job->rnext = p->retry_jobs;
	if (p->retry_jobs)
		p->retry_jobs->rprev = job;
	p->retry_jobs = job;
	if (submit_job(p, job, wh) < 0) {
		p->retry_jobs = job->rnext;
		if (job->rnext)
			job->rnext->rprev = NULL;
		p->retries_live--;
		free(job);
		return -1;
	}
	return 0;
}

/* Claims due retries into what is left of their share and of the bound:
 * deliveries in flight, first attempts and retries together, never exceed
 * PROMO_WEBHOOKS_MAX_IN_FLIGHT. */
static void claim_retries(struct pipeline *p)
{
	size_t cap = retry_cap(p), max = (size_t)p->cfg->max_in_flight;
	size_t h = held(p), room = h < max ? max - h : 0;
	size_t want;
	int squeezable;

	/* Squeezed: retries wait in Redis, the bound left less room than
	 * their share, and the last claim's retries were not all put back
	 * at a saturated target (those need no room: a reserve for them
	 * would only cost first attempts a quarter of the bound). */
	squeezable = p->counters.retries_pending > 0 &&
		     !(p->claimed_refused > 0 && p->claimed_started == 0);
	p->retry_squeezed = 0;
	p->claimed_started = p->claimed_refused = 0;
	if (p->retries_live >= cap)
		return;
	want = cap - p->retries_live;
	if (want > PIPELINE_RETRY_BATCH)
		want = PIPELINE_RETRY_BATCH;
	if (room < want) {
		p->retry_squeezed = squeezable;
		want = room;
	}
	retryrelay_claim(p->retries, clock_wall_ms(), retry_lease_ms(p), want);
	/* The claim and a reserve count from now; a reserve that ended (no
	 * longer squeezed) gives intake its room back. */
	if (over_bound(p))
		set_intake(p, 0);
	else
		after_completion(p);
}

static void counts_cb(void *arg, enum store_status status, int64_t retries, int64_t notices)
{
	struct pipeline *p = arg;

	p->counting = 0;
	if (status == STORE_OK) {
		p->counters.retries_pending = retries;
		p->counters.notices_pending = notices;
	}
}

static void claim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pipeline *p = arg;

	(void)fd;
	(void)what;
	if (p->state != PIPELINE_RUNNING || !store_is_ready(p->store))
		return;
	claim_retries(p);
	noticerelay_claim(p->notices, clock_wall_ms());
	if (!p->counting && store_counts(p->store, counts_cb, p) == 0)
		p->counting = 1;
}

/* ---- consuming ------------------------------------------------------- */

static void on_message(void *arg, const struct kafka_message *m)
{
	struct pipeline *p = arg;
	const struct webhook *const *hooks;
	struct inflight_event *ie;
	struct offsets_ticket t;
	char err[256];
	size_t n, i;

	p->counters.consumed++;
	if (offsets_track(p->offsets, m->topic, m->partition, m->offset, clock_wall_ms(), &t) < 0) {
		/* Out of memory or an offset behind one already tracked (a
		 * redelivery after a seek): never store past it. */
		log_error("cannot track message", "topic=%s partition=%" PRId32 " offset=%" PRId64,
			  m->topic, m->partition, m->offset);
		return;
	}

	ie = calloc(1, sizeof(*ie));
	if (!ie) {
		log_error("out of memory for event", "offset=%" PRId64, m->offset);
		return;
	}
	if (event_decode(m->value, m->value_len, m->headers, m->n_headers, &ie->ev, err,
			 sizeof(err)) < 0) {
		free(ie);
		log_warn("invalid event, dead-lettering", "topic=%s partition=%" PRId32 " offset=%" PRId64 " reason=\"%s\"",
			 m->topic, m->partition, m->offset, err);
		if (deadletter_copy(p->dlq, m, err, t, NULL) < 0)
			log_error("out of memory copying dead letter", "offset=%" PRId64, m->offset);
		return;
	}

	ie->ticket = t;
	/* Hold one reference while starting the parts so that no completion
	 * can finish the ticket before every part is started. */
	ie->remaining = 1;
	if (is_promotion_change(ie->ev.type)) {
		int rc;

		ie->remaining++;
		rc = promo_start(p, ie);
		if (rc == STORE_PROMOTION_TOO_LARGE) {
			/* Permanent: its webhooks still get the event, but no
			 * period event can come of it. The copy on the
			 * dead-letter topic says why, and takes the part's
			 * place. */
			p->counters.permanent[PMETRICS_PERM_STATE_NOT_STORED]++;
			log_error("promotion state too large to store, dead-lettering the event",
				  "topic=%s partition=%" PRId32 " offset=%" PRId64 " promotion=%s data_bytes=%zu",
				  m->topic, m->partition, m->offset, ie->ev.promotion_id,
				  ie->ev.data_len);
			if (deadletter_copy(p->dlq, m,
					    "promotion state too large to store: no period events for this promotion",
					    t, ie) < 0)
				rc = -1;
		}
		if (rc == -1) {
			ie->remaining--;
			ie->unfinished++;
		}
	}
	n = match_find(registry_index(p->reg), ie->ev.company_id, ie->ev.type, &hooks);
	if (n == 0)
		p->counters.unmatched++;
	for (i = 0; i < n; i++) {
		ie->remaining++;
		if (submit_first(p, ie, hooks[i]) < 0) {
			/* Leave the ticket unfinished: the event is consumed
			 * again after a restart rather than silently lost. */
			ie->remaining--;
			ie->unfinished++;
		}
	}
	event_part_done(p, ie, 1);
	if (over_bound(p))
		set_intake(p, 0);
}

static void on_assigned(void *arg, const struct kafka_partition *parts, size_t n)
{
	struct pipeline *p = arg;
	struct assigned_partition *grown;
	size_t i;

	grown = realloc(p->assigned, (p->n_assigned + n + 1) * sizeof(*grown));
	if (grown)
		p->assigned = grown;
	for (i = 0; i < n; i++) {
		log_info("partition assigned", "topic=%s partition=%" PRId32,
			 parts[i].topic, parts[i].partition);
		if (grown && (p->assigned[p->n_assigned].topic = strdup(parts[i].topic)))
			p->assigned[p->n_assigned++].partition = parts[i].partition;
	}
}

static void forget_assigned(struct pipeline *p, const char *topic, int32_t partition)
{
	size_t i;

	for (i = 0; i < p->n_assigned; i++) {
		if (p->assigned[i].partition == partition &&
		    strcmp(p->assigned[i].topic, topic) == 0) {
			free(p->assigned[i].topic);
			p->assigned[i] = p->assigned[--p->n_assigned];
			return;
		}
	}
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
		forget_assigned(p, parts[i].topic, parts[i].partition);
	}
}

static void finish_stop(struct pipeline *p)
{
	p->state = PIPELINE_STOPPED;
	log_info("consumer closed", "consumed=%" PRIu64, p->counters.consumed);
	if (p->stopped)
		p->stopped(p->stopped_arg);
}

/* After the final flush: the delivery reports it served have started the
 * removal of published notices from the outbox. Each lost removal is a
 * notice another replica publishes again when its lease ends, so the loop
 * keeps running (bounded) until Redis has answered them all. */
static void ack_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pipeline *p = arg;
	struct timeval tv = { 0, 10 * 1000 };
	size_t pending = noticerelay_acks_pending(p->notices);

	(void)fd;
	(void)what;
	if (pending == 0) {
		finish_stop(p);
		return;
	}
	if (clock_mono_ms() >= p->ack_deadline_ms) {
		log_warn("notice acknowledgements not answered at exit; those notices are published again when their lease ends",
			 "pending=%zu", pending);
		finish_stop(p);
		return;
	}
	evtimer_add(p->ack_timer, &tv);
}

static void on_closed(void *arg)
{
	struct pipeline *p = arg;
	size_t pending;

	kafka_flush(p->kafka, 5000);
	pending = noticerelay_acks_pending(p->notices);
	if (pending == 0) {
		finish_stop(p);
		return;
	}
	log_info("waiting for notice acknowledgements before exit", "pending=%zu", pending);
	p->ack_deadline_ms = clock_mono_ms() + PIPELINE_ACK_DRAIN_MS;
	ack_drain_cb(-1, 0, p);
}

/* ---- lifecycle ------------------------------------------------------- */

static void begin_close(struct pipeline *p)
{
	if (p->state >= PIPELINE_CLOSING)
		return;
	p->state = PIPELINE_CLOSING;
	if (p->grace_timer)
		event_del(p->grace_timer);
	flush_attempt_log(p); /* the last successes, while Redis is there */
	log_info("leaving the consumer group", "%s", "");
	kafka_close(p->kafka);
}

static void after_completion(struct pipeline *p)
{
	if (p->state == PIPELINE_RUNNING) {
		size_t pending = held(p);

		if (!p->intake_on &&
		    pending * PIPELINE_RESUME_DEN <=
			    (size_t)p->cfg->max_in_flight * PIPELINE_RESUME_NUM)
			set_intake(p, 1);
	} else if (p->state == PIPELINE_DRAINING) {
		if (p->jobs_live == 0 && deadletter_pending(p->dlq) == 0)
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
	flush_attempt_log(p);
}

struct pipeline *pipeline_new(struct event_base *base, const struct config *cfg,
			      struct store *store, struct registry *reg, char *err,
			      size_t errlen)
{
	struct kafka_callbacks cb;
	struct pipeline *p;
	struct timeval tv = { 0, PIPELINE_TICK_MS * 1000 };
	struct timeval claim_tv = { 0, PIPELINE_CLAIM_EVERY_MS * 1000 };

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
	buf_init(&p->scratch, 0);
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
	p->dlq = deadletter_new(base, cfg, p->kafka, dead_lettered, p);
	p->notices = noticerelay_new(cfg, p->store, p->kafka);
	p->retries = retryrelay_new(p->store, p->reg, submit_retry, p);
	if (!p->dlq || !p->notices || !p->retries) {
		snprintf(err, errlen, "cannot create the pipeline's relays: out of memory");
		goto fail;
	}

	p->tick = event_new(base, -1, EV_PERSIST, tick_cb, p);
	p->claim_timer = event_new(base, -1, EV_PERSIST, claim_cb, p);
	p->grace_timer = evtimer_new(base, grace_cb, p);
	p->ack_timer = evtimer_new(base, ack_drain_cb, p);
	if (!p->tick || !p->claim_timer || !p->grace_timer || !p->ack_timer || event_add(p->tick, &tv) < 0 ||
	    event_add(p->claim_timer, &claim_tv) < 0) {
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
	if (p->claim_timer)
		event_free(p->claim_timer);
	if (p->grace_timer)
		event_free(p->grace_timer);
	if (p->ack_timer)
		event_free(p->ack_timer);
	if (p->kafka)
		kafka_free(p->kafka);
	deadletter_free(p->dlq);
	noticerelay_free(p->notices);
	retryrelay_free(p->retries);
	if (p->deliver)
		deliver_free(p->deliver);
	if (p->offsets)
		offsets_free(p->offsets);
	store_cancel(p->store, p);
	while (p->n_assigned)
		free(p->assigned[--p->n_assigned].topic);
	free(p->assigned);
	buf_release(&p->body);
	buf_release(&p->scratch);
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
	deadletter_stop(p->dlq);
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

size_t pipeline_unwritable(const struct pipeline *p, struct kafka_topic_problem *out,
			   size_t max)
{
	return kafka_topic_problems(p->kafka, out, max);
}

int pipeline_ready(const struct pipeline *p)
{
	return p->state == PIPELINE_RUNNING && kafka_in_group(p->kafka);
}

void pipeline_metrics(const struct pipeline *p, struct buf *out)
{
	uint64_t relay_redis, relay_kafka;
	struct deadletter_counts dlq;
	struct pmetrics counters;
	int64_t now;
	size_t i;

	noticerelay_errors(p->notices, &relay_redis, &relay_kafka);
	deadletter_counts(p->dlq, &dlq);
	counters = p->counters;
	counters.permanent[PMETRICS_PERM_DEAD_LETTER_TRUNCATED] += dlq.truncated;
	counters.permanent[PMETRICS_PERM_DEAD_LETTER_NOT_COPIED] += dlq.not_copied;
	counters.permanent[PMETRICS_PERM_NOTICE_REFUSED] += noticerelay_refused(p->notices);
	pmetrics_write(&counters, deliver_pending(p->deliver),
		       offsets_pending_total(p->offsets),
		       relay_redis + retryrelay_errors(p->retries),
		       relay_kafka + dlq.failed, out);
	deadletter_metrics(p->dlq, out);
	noticerelay_metrics(p->notices, out);
	prom_counter(out, "promo_webhooks_period_occurrences_dropped_total",
		     "Period event occurrences dropped before an attempt: their promotion was deleted or its date moved.",
		     retryrelay_dropped(p->retries));
	prom_counter(out, "promo_webhooks_retry_jobs_unreadable_total",
		     "Retry jobs that could not be decoded, removed from Redis.",
		     retryrelay_unreadable(p->retries));
	prom_family(out, "promo_webhooks_oldest_unfinished_event_age_seconds", "gauge",
		    "Age of the oldest consumed event without an outcome (time lag), per partition.");
	now = clock_wall_ms();
	for (i = 0; i < p->n_assigned; i++) {
		int64_t oldest = offsets_oldest_ms(p->offsets, p->assigned[i].topic,
						   p->assigned[i].partition);

		buf_addf(out, "promo_webhooks_oldest_unfinished_event_age_seconds{topic=\"%s\",partition=\"%" PRId32 "\"} %.3f\n",
			 p->assigned[i].topic, p->assigned[i].partition,
			 oldest ? (double)(now - oldest) / 1000.0 : 0.0);
	}
	kafka_metrics(p->kafka, out);
}
