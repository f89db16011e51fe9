/*
 * kafka: the consumer group and the idempotent producer on the libevent
 * loop (pipeline stages 1 and 7); the only file that includes librdkafka.
 * See include/promo_webhooks/kafka.h.
 *
 * Loop integration: every librdkafka queue we serve (the consumer's main
 * queue for logs, errors and statistics; the consumer queue for messages
 * and rebalances; our commit-result queue; the close queue; the producer's
 * main queue for delivery reports) writes a byte to one pipe when it turns
 * non-empty, and a 100 ms timer serves them all as well, since that wake-up
 * comes only once per non-polling period. The consumer's main queue is not
 * forwarded to the consumer queue, so logs, errors and statistics keep
 * flowing while message intake is off.
 *
 * Intake off: messages are simply not taken from the consumer queue
 * (librdkafka's prefetch buffers them). After KAFKA_PAUSE_AFTER_MS the
 * assigned partitions are paused and the queue is polled again (for
 * rebalances and max.poll.interval.ms); pausing discards the prefetched
 * messages and resuming fetches again from the last message handed out,
 * so nothing is lost. The intent survives reassignments.
 *
 * Revoke (eager assignor): messages stop being handed out, in-flight work
 * on the revoked partitions is given until a deadline to finish (the
 * caller stores offsets meanwhile), the stored offsets are committed, the
 * caller is told, and only then are the partitions given up.
 *
 * Size: the only librdkafka user: consumer and producer, the rebalance
 * protocol, pausing, statistics and the loop integration.
 */
#include "promo_webhooks/kafka.h"
#include "promo_webhooks/prom.h"
#include "promo_webhooks/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <yajl/yajl_tree.h>

#include "promo_webhooks/log.h"

/* Messages handed out per pass before yielding to the loop: at fan-out 4
 * a message is about 40 us of rendering and submitting, so a pass of 64
 * keeps the loop back at its sockets within a few milliseconds (answers
 * waiting behind a long pass add to every delivery's latency, and make a
 * fast target look slow to its adaptive limit). */
#define KAFKA_BATCH 64
/* How often every queue is served, whatever the wake-ups. */
#define KAFKA_TICK_MS 100
/* Intake off for this long pauses the assigned partitions. */
#define KAFKA_PAUSE_AFTER_MS 5000
/* A revoke waits at most this long for in-flight work (and never longer
 * than the shutdown grace period); far below max.poll.interval.ms. */
#define KAFKA_REVOKE_MAX_WAIT_MS 30000
/* How long a revoke waits for its final commit. */
#define KAFKA_COMMIT_WAIT_MS 10000
/* Messages held back when intake went off between poll and hand-out. */
#define KAFKA_STASH_MAX 1024
#define KAFKA_STATS_INTERVAL_MS "5000"
/* How often the output topics' metadata is checked (a missing topic is
 * named by /readyz), and how long one check may take. */
#define KAFKA_TOPIC_CHECK_MS 15000
#define KAFKA_TOPIC_CHECK_TIMEOUT_MS 2000
/* The output topics watched: the dead-letter and the email topic. */
#define KAFKA_WATCHED 2

enum revoke_phase {
	REVOKE_NONE = 0,
	REVOKE_DRAIN,  /* waiting for in-flight work to finish */
	REVOKE_COMMIT, /* waiting for the final commit */
};

/* Produce completion context, the message's opaque. */
struct produce_ctx {
	kafka_produce_done_fn *done;
	void *arg;
};

/* An output topic's health. missing is written by the checker thread,
 * refused by the loop; both under kafka.watch_lock. */
struct watched_topic {
	char name[256];
	int missing;        /* the last metadata check did not find it */
	int refused;        /* the last produce to it was refused */
	char reason[160];   /* why it was refused */
};

/* What the latest statistics say about one partition. */
struct part_stats {
	char *topic;
	int32_t partition;
	int64_t lag;       /* consumer_lag, -1 unknown */
	int64_t committed; /* committed_offset, < 0 unknown */
};

struct kafka {
	struct event_base *base;
	struct kafka_callbacks cb;
	long revoke_wait_ms;

	rd_kafka_t *consumer;
	rd_kafka_t *producer;
	rd_kafka_queue_t *cmain;   /* consumer main queue: logs, errors, stats */
	rd_kafka_queue_t *cq;      /* consumer queue: messages, rebalances */
	rd_kafka_queue_t *commitq; /* results of our own commits */
	rd_kafka_queue_t *closeq;  /* everything, while closing */
	rd_kafka_queue_t *pmain;   /* producer main queue: reports, logs */

	int wake_fd[2];            /* the pipe librdkafka writes to */
	struct event *wake_ev;
	struct event *tick_ev;
	struct event *kick_ev;     /* deferred serve pass */
	int serving;               /* inside serve(): no re-entry */

	int intake;                /* the caller's wish */
	int64_t intake_off_ms;     /* monotonic time intake went off */
	int paused;                /* assigned partitions paused by us */
	int in_group;
	int fatal;
	rd_kafka_topic_partition_list_t *assignment; /* NULL when none */

	enum revoke_phase revoke;
	rd_kafka_topic_partition_list_t *revoking;  /* while revoke != NONE */
	int64_t revoke_deadline_ms;
	int64_t commit_deadline_ms;
	uintptr_t commit_gen;      /* tags our revoke commits */

	int closing;
	int close_failed;          /* consumer_close_queue refused */
	int closed_reported;

	rd_kafka_message_t **stash; /* polled, not yet handed out, in order */
	size_t n_stash;

	struct event_header *hdrs; /* scratch for the message view */
	size_t hdrs_cap;

	struct part_stats *stats;
	size_t n_stats;

	struct watched_topic watched[KAFKA_WATCHED];
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_cond;  /* wakes the checker to stop */
	pthread_t watch_thread;
	int watch_started;
	int watch_stop;             /* under watch_lock */
};

static void kick(struct kafka *k)
{
	if (k->kick_ev)
		event_active(k->kick_ev, EV_TIMEOUT, 0);
}

/* ---- librdkafka callbacks (served from the loop) ----------------------- */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum log_level lv;
	char text[1024];
	size_t i;

	/* At most a warning: what librdkafka logs at LOG_ERR (a broker that
	 * refused a connection during its restart, say) is retried by
	 * librdkafka itself, and what needs someone comes through error_cb
	 * (fatal) or a permanent produce result, logged at error level
	 * there. So an error line stays worth paging for. */
	if (level <= 4)
		lv = LOG_LEVEL_WARN;
	else if (level <= 6)
		lv = LOG_LEVEL_INFO;
	else
		lv = LOG_LEVEL_DEBUG;
	/* The pass-through properties go to both clients; that a consumer
	 * property means nothing to the producer (and the reverse) is
	 * expected, not worth a warning on every start. */
	if (lv == LOG_LEVEL_WARN && strcmp(fac, "CONFWARN") == 0 &&
	    strstr(buf, " property and will be ignored by this ") != NULL)
		lv = LOG_LEVEL_DEBUG;
	if (lv < log_min_level)
		return;
	/* The text becomes one quoted logfmt value. */
	snprintf(text, sizeof(text), "%s", buf);
	for (i = 0; text[i]; i++)
		if (text[i] == '"' || text[i] == '\n')
			text[i] = '\'';
	log_emit(lv, "librdkafka", "client=%s facility=%s text=\"%s\"",
		 rd_kafka_name(rk), fac, text);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kafka *k = opaque;
	char fatal[512];

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));

		log_error("kafka client failed fatally", "client=%s error=%s reason=\"%s\"",
			  rd_kafka_name(rk), rd_kafka_err2name(orig), fatal);
		if (rk == k->consumer) {
			k->fatal = 1;
			k->in_group = 0;
		}
		return;
	}
	/* Transient: librdkafka retries by itself. */
	log_warn("kafka client error", "client=%s error=%s reason=\"%s\"",
		 rd_kafka_name(rk), rd_kafka_err2name((rd_kafka_resp_err_t)err),
		 reason);
}

/* Permanent produce errors, by kind (NOTES.md: librdkafka 2.0.2 has no
 * retriable flag for a delivery report's code). Every other code is
 * transient: the broker away, a timeout, a full queue. */
static enum kafka_produce_result classify(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		return KAFKA_PRODUCED;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
		return KAFKA_PRODUCE_TOO_LARGE;
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
		return KAFKA_PRODUCE_REFUSED;
	default:
		return KAFKA_PRODUCE_FAILED;
	}
}

const char *kafka_produce_result_name(enum kafka_produce_result r)
{
	switch (r) {
	case KAFKA_PRODUCED: return "produced";
	case KAFKA_PRODUCE_FAILED: return "failed";
	case KAFKA_PRODUCE_TOO_LARGE: return "too large";
	case KAFKA_PRODUCE_REFUSED: return "refused";
	}
	return "unknown";
}

/* A produce to topic ended with r: a refusal marks a watched topic, a
 * success clears the mark. */
static void watch_note(struct kafka *k, const char *topic, enum kafka_produce_result r,
		       const char *why)
{
	size_t i;

	if (r != KAFKA_PRODUCED && r != KAFKA_PRODUCE_REFUSED)
		return;
	pthread_mutex_lock(&k->watch_lock);
	for (i = 0; i < KAFKA_WATCHED; i++) {
		struct watched_topic *w = &k->watched[i];

		if (strcmp(w->name, topic) != 0)
			continue;
		if (r == KAFKA_PRODUCED) {
			w->refused = 0;
			w->missing = 0;
		} else {
			w->refused = 1;
			snprintf(w->reason, sizeof(w->reason), "%s", why);
		}
	}
	pthread_mutex_unlock(&k->watch_lock);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct produce_ctx *pc = m->_private;
	struct kafka *k = opaque;
	enum kafka_produce_result r = classify(m->err);
	const char *why = m->err ? rd_kafka_err2str(m->err) : "";

	(void)rk;
	if (!pc)
		return;
	if (m->rkt)
		watch_note(k, rd_kafka_topic_name(m->rkt), r, why);
	pc->done(pc->arg, r, why);
	free(pc);
}

/* The checker thread: asks the broker every KAFKA_TOPIC_CHECK_MS whether
 * the output topics exist. A blocking call, so not on the loop. */
static void *watch_main(void *arg)
{
	struct kafka *k = arg;

	pthread_mutex_lock(&k->watch_lock);
	while (!k->watch_stop) {
		struct timespec until;
		size_t i;

		for (i = 0; i < KAFKA_WATCHED && !k->watch_stop; i++) {
			char name[256];
			const struct rd_kafka_metadata *md = NULL;
			rd_kafka_topic_t *rkt;
			rd_kafka_resp_err_t e;
			int missing = -1;

			if (!k->watched[i].name[0])
				continue;
			memcpy(name, k->watched[i].name, sizeof(name));
			pthread_mutex_unlock(&k->watch_lock);
			rkt = rd_kafka_topic_new(k->producer, name, NULL);
			if (rkt) {
				e = rd_kafka_metadata(k->producer, 0, rkt, &md,
						      KAFKA_TOPIC_CHECK_TIMEOUT_MS);
				if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->topic_cnt == 1)
					missing = md->topics[0].err ==
							  RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
						  md->topics[0].err ==
							  RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
				if (md)
					rd_kafka_metadata_destroy(md);
				rd_kafka_topic_destroy(rkt);
			}
			pthread_mutex_lock(&k->watch_lock);
			/* No answer (the broker away) says nothing either way. */
			if (missing >= 0)
				k->watched[i].missing = missing;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += KAFKA_TOPIC_CHECK_MS / 1000;
		while (!k->watch_stop &&
		       pthread_cond_timedwait(&k->watch_cond, &k->watch_lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&k->watch_lock);
	return NULL;
}

size_t kafka_topic_problems(struct kafka *k, struct kafka_topic_problem *out, size_t max)
{
	size_t i, n = 0;

	pthread_mutex_lock(&k->watch_lock);
	for (i = 0; i < KAFKA_WATCHED; i++) {
		const struct watched_topic *w = &k->watched[i];

		if (!w->name[0] || (!w->missing && !w->refused))
			continue;
		if (n < max) {
			snprintf(out[n].topic, sizeof(out[n].topic), "%s", w->name);
			if (w->missing)
				snprintf(out[n].reason, sizeof(out[n].reason), "%s",
					 "the topic does not exist or is not visible to this client");
			else
				snprintf(out[n].reason, sizeof(out[n].reason), "refuses writes: %.143s",
					 w->reason);
		}
		n++;
	}
	pthread_mutex_unlock(&k->watch_lock);
	return n;
}

static void stats_free(struct kafka *k)
{
	size_t i;

	for (i = 0; i < k->n_stats; i++)
		free(k->stats[i].topic);
	free(k->stats);
	k->stats = NULL;
	k->n_stats = 0;
}

static int64_t json_int(yajl_val obj, const char *name)
{
	const char *path[] = { name, NULL };
	yajl_val v = yajl_tree_get(obj, path, yajl_t_number);

	return v && YAJL_IS_INTEGER(v) ? (int64_t)YAJL_GET_INTEGER(v) : -1;
}

/* Keeps consumer_lag and committed_offset per partition from a statistics
 * document: {"topics": {"t": {"partitions": {"0": {...}}}}}. */
static void parse_stats(struct kafka *k, const char *json, size_t len)
{
	static const char *topics_path[] = { "topics", NULL };
	static const char *parts_path[] = { "partitions", NULL };
	struct part_stats *out = NULL;
	size_t n = 0, cap = 0, i, j;
	char errbuf[128], *copy;
	yajl_val root, topics;

	copy = malloc(len + 1);
	if (!copy)
		return;
	memcpy(copy, json, len);
	copy[len] = '\0';
	root = yajl_tree_parse(copy, errbuf, sizeof(errbuf));
	free(copy);
	if (!root) {
		log_warn("cannot parse librdkafka statistics", "error=\"%s\"", errbuf);
		return;
	}
	topics = yajl_tree_get(root, topics_path, yajl_t_object);
	for (i = 0; topics && i < topics->u.object.len; i++) {
		yajl_val parts = yajl_tree_get(topics->u.object.values[i], parts_path,
					       yajl_t_object);

		for (j = 0; parts && j < parts->u.object.len; j++) {
			yajl_val p = parts->u.object.values[j];
			char *end;
			long pn;

			errno = 0;
			pn = strtol(parts->u.object.keys[j], &end, 10);
			if (errno || *end || pn < 0 || pn > INT32_MAX)
				continue; /* -1 is librdkafka's internal partition */
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct part_stats *t = realloc(out, ncap * sizeof(*t));

				if (!t)
					goto fail;
				out = t;
				cap = ncap;
			}
			out[n].topic = strdup(topics->u.object.keys[i]);
			if (!out[n].topic)
				goto fail;
			out[n].partition = (int32_t)pn;
			out[n].lag = json_int(p, "consumer_lag");
			out[n].committed = json_int(p, "committed_offset");
			if (out[n].lag < 0 && out[n].committed < 0) {
				/* Never committed by this group: librdkafka says
				 * -1, but everything from the log start is still
				 * to do (auto.offset.reset=earliest), and a new
				 * group's backlog must show on the dashboards. */
				int64_t hi = json_int(p, "hi_offset");
				int64_t lo = json_int(p, "lo_offset");

				if (hi >= 0 && lo >= 0 && hi >= lo)
					out[n].lag = hi - lo;
			}
			n++;
		}
	}
	yajl_tree_free(root);
	stats_free(k);
	k->stats = out;
	k->n_stats = n;
	return;
fail:
	for (i = 0; i < n; i++)
		free(out[i].topic);
	free(out);
	yajl_tree_free(root);
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
	(void)rk;
	parse_stats(opaque, json, json_len);
	return 0; /* librdkafka frees json */
}

/* ---- partitions --------------------------------------------------------- */

static int list_has(const rd_kafka_topic_partition_list_t *l, const char *topic,
		    int32_t partition)
{
	return l && rd_kafka_topic_partition_list_find(
			    (rd_kafka_topic_partition_list_t *)(uintptr_t)l, topic,
			    partition) != NULL;
}

/* Calls fn with l as an array of struct kafka_partition. */
static void with_parts(const rd_kafka_topic_partition_list_t *l,
		       void (*fn)(struct kafka *k, const struct kafka_partition *p,
				  size_t n, int flag),
		       struct kafka *k, int flag)
{
	struct kafka_partition one = { NULL, 0 }, *p = &one;
	size_t n = l ? (size_t)l->cnt : 0, i;

	if (n > 1) {
		p = calloc(n, sizeof(*p));
		if (!p) {
			log_error("out of memory listing partitions", "count=%zu", n);
			return;
		}
	}
	for (i = 0; i < n; i++) {
		p[i].topic = l->elems[i].topic;
		p[i].partition = l->elems[i].partition;
	}
	fn(k, p, n, flag);
	if (p != &one)
		free(p);
}

static void call_assigned(struct kafka *k, const struct kafka_partition *p,
			  size_t n, int flag)
{
	(void)flag;
	if (k->cb.on_assigned)
		k->cb.on_assigned(k->cb.arg, p, n);
}

static void call_revoked(struct kafka *k, const struct kafka_partition *p,
			 size_t n, int lost)
{
	if (k->cb.on_revoked)
		k->cb.on_revoked(k->cb.arg, p, n, lost);
}

static void pause_resume(struct kafka *k, rd_kafka_topic_partition_list_t *l,
			 int pause)
{
	rd_kafka_resp_err_t err;

	if (!l || l->cnt == 0)
		return;
	err = pause ? rd_kafka_pause_partitions(k->consumer, l)
		    : rd_kafka_resume_partitions(k->consumer, l);
	if (err)
		log_warn(pause ? "cannot pause partitions" : "cannot resume partitions",
			 "error=\"%s\"", rd_kafka_err2str(err));
}

/* Drops held-back messages of the partitions in l (all when l is NULL). */
static void stash_drop(struct kafka *k, const rd_kafka_topic_partition_list_t *l)
{
	size_t i, kept = 0;

	for (i = 0; i < k->n_stash; i++) {
		rd_kafka_message_t *m = k->stash[i];

		if (!l || list_has(l, rd_kafka_topic_name(m->rkt), m->partition))
			rd_kafka_message_destroy(m);
		else
			k->stash[kept++] = m;
	}
	k->n_stash = kept;
}

/* Gives up parts (a revoke after its drain, or a lost assignment). */
static void unassign(struct kafka *k, rd_kafka_topic_partition_list_t *parts, int lost)
{
	rd_kafka_resp_err_t err;

	stash_drop(k, parts);
	with_parts(parts, call_revoked, k, lost);
	err = rd_kafka_assign(k->consumer, NULL);
	if (err)
		log_error("cannot give up partitions", "error=\"%s\"", rd_kafka_err2str(err));
	/* librdkafka remembers a pause on the partition itself, also across
	 * an unassign: clear ours so a later assignment starts clean. */
	if (k->paused)
		pause_resume(k, parts, 0);
	if (k->assignment) {
		rd_kafka_topic_partition_list_destroy(k->assignment);
		k->assignment = NULL;
	}
	kick(k);
}

static void finish_revoke(struct kafka *k)
{
	rd_kafka_topic_partition_list_t *parts = k->revoking;

	k->revoking = NULL;
	k->revoke = REVOKE_NONE;
	unassign(k, parts, 0);
	rd_kafka_topic_partition_list_destroy(parts);
}

/* Moves a revoke on: drain -> commit -> give up. */
static void revoke_progress(struct kafka *k)
{
	int64_t now = clock_mono_ms();
	rd_kafka_resp_err_t err;
	int i;

	if (k->revoke == REVOKE_DRAIN) {
		size_t busy = 0;

		for (i = 0; i < k->revoking->cnt; i++) {
			if (k->cb.in_flight)
				busy += k->cb.in_flight(k->cb.arg, k->revoking->elems[i].topic,
							k->revoking->elems[i].partition);
		}
		if (busy && now < k->revoke_deadline_ms)
			return;
		if (busy && k->closing)
			log_info("closing: giving up partitions with work in flight",
				 "in_flight=%zu", busy);
		else if (busy)
			log_warn("revoke: in-flight work did not finish in time, giving up "
				 "partitions anyway",
				 "in_flight=%zu wait_ms=%ld", busy, k->revoke_wait_ms);
		k->commit_gen++;
		err = rd_kafka_commit_queue(k->consumer, NULL, k->commitq, NULL,
					    (void *)k->commit_gen);
		if (err) {
			if (err != RD_KAFKA_RESP_ERR__NO_OFFSET)
				log_warn("revoke: cannot commit offsets", "error=\"%s\"",
					 rd_kafka_err2str(err));
			finish_revoke(k);
			return;
		}
		k->revoke = REVOKE_COMMIT;
		k->commit_deadline_ms = now + KAFKA_COMMIT_WAIT_MS;
		return;
	}
	if (k->revoke == REVOKE_COMMIT && now >= k->commit_deadline_ms) {
		log_warn("revoke: commit did not answer in time, giving up partitions",
			 "timeout_ms=%d", KAFKA_COMMIT_WAIT_MS);
		finish_revoke(k);
	}
}

static void rebalance(struct kafka *k, rd_kafka_resp_err_t err,
		      rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_resp_err_t e;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (k->revoke != REVOKE_NONE) /* cannot happen with eager */
			finish_revoke(k);
		e = rd_kafka_assign(k->consumer, parts);
		if (e) {
			log_error("cannot assign partitions", "error=\"%s\"",
				  rd_kafka_err2str(e));
			return;
		}
		if (k->assignment)
			rd_kafka_topic_partition_list_destroy(k->assignment);
		k->assignment = rd_kafka_topic_partition_list_copy(parts);
		if (!k->assignment)
			log_error("out of memory copying the assignment", "%s", "");
		k->in_group = !k->closing && !k->fatal;
		if (k->paused)
			pause_resume(k, parts, 1);
		log_info("kafka partitions assigned", "count=%d paused=%d", parts->cnt,
			 k->paused);
		with_parts(parts, call_assigned, k, 0);
		kick(k);
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
		if (rd_kafka_assignment_lost(k->consumer)) {
			log_warn("kafka partitions lost", "count=%d", parts->cnt);
			k->in_group = 0;
			if (k->revoke != REVOKE_NONE) {
				rd_kafka_topic_partition_list_destroy(k->revoking);
				k->revoking = NULL;
				k->revoke = REVOKE_NONE;
			}
			unassign(k, parts, 1);
			return;
		}
		if (k->revoke != REVOKE_NONE)
			return; /* already on its way */
		k->revoking = rd_kafka_topic_partition_list_copy(parts);
		if (!k->revoking) {
			log_error("out of memory copying the revoked partitions", "%s", "");
			unassign(k, parts, 0);
			return;
		}
		log_info("kafka partitions revoked, draining", "count=%d", parts->cnt);
		k->revoke = REVOKE_DRAIN;
		/* Closing: the caller has drained already (kafka_close). */
		k->revoke_deadline_ms = clock_mono_ms() + (k->closing ? 0 : k->revoke_wait_ms);
		revoke_progress(k);
		return;
	}
	log_error("kafka rebalance failed", "error=\"%s\"", rd_kafka_err2str(err));
	if (k->revoke != REVOKE_NONE) {
		finish_revoke(k);
	} else {
		e = rd_kafka_assign(k->consumer, NULL);
		if (e)
			log_error("cannot give up partitions", "error=\"%s\"",
				  rd_kafka_err2str(e));
		if (k->assignment) {
			rd_kafka_topic_partition_list_destroy(k->assignment);
			k->assignment = NULL;
		}
	}
	k->in_group = 0;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	(void)rk;
	rebalance(opaque, err, parts);
}

/* ---- serving ------------------------------------------------------------ */

/* Hands one message to the caller as a view; the caller copies. */
static void hand_out(struct kafka *k, rd_kafka_message_t *m)
{
	struct kafka_message km;
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_timestamp_type_t tstype;
	size_t n = 0, i;

	memset(&km, 0, sizeof(km));
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs)
		n = rd_kafka_header_cnt(hdrs);
	if (n > k->hdrs_cap) {
		struct event_header *t = realloc(k->hdrs, n * sizeof(*t));

		if (!t) {
			/* Dropping the message would lose it: stop instead. */
			log_error("out of memory for message headers, stashing message",
				  "headers=%zu", n);
			k->stash[k->n_stash++] = m;
			k->intake = 0;
			k->intake_off_ms = clock_mono_ms();
			return;
		}
		k->hdrs = t;
		k->hdrs_cap = n;
	}
	for (i = 0; i < n; i++) {
		const char *name;
		const void *value;
		size_t size;

		if (rd_kafka_header_get_all(hdrs, i, &name, &value, &size) != 0) {
			n = i;
			break;
		}
		k->hdrs[i].name = name;
		k->hdrs[i].value = value;
		k->hdrs[i].value_len = value ? size : 0;
	}
	km.topic = rd_kafka_topic_name(m->rkt);
	km.partition = m->partition;
	km.offset = m->offset;
	km.key = m->key;
	km.key_len = m->key ? m->key_len : 0;
	km.value = m->payload;
	km.value_len = m->payload ? m->len : 0;
	km.headers = k->hdrs;
	km.n_headers = n;
	km.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
	if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
		km.timestamp_ms = -1;
	k->cb.on_message(k->cb.arg, &km);
	rd_kafka_message_destroy(m);
}

/* 1 when a message of this partition may go to the caller now. */
static int may_hand_out(const struct kafka *k, const rd_kafka_message_t *m)
{
	const char *topic = rd_kafka_topic_name(m->rkt);

	return k->intake && !k->closing && !list_has(k->revoking, topic, m->partition);
}

static void take(struct kafka *k, rd_kafka_message_t *m)
{
	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_warn("kafka consumer error", "topic=%s partition=%" PRId32
				 " error=\"%s\"",
				 m->rkt ? rd_kafka_topic_name(m->rkt) : "-", m->partition,
				 rd_kafka_message_errstr(m));
		rd_kafka_message_destroy(m);
		return;
	}
	if (list_has(k->revoking, rd_kafka_topic_name(m->rkt), m->partition)) {
		/* Not handed out, not stored: whoever owns the partition
		 * next consumes it from the committed offset. */
		rd_kafka_message_destroy(m);
		return;
	}
	if (!may_hand_out(k, m)) {
		/* Intake went off (or pausing let one through): hold it, in
		 * order, since librdkafka's position is already past it. */
		k->stash[k->n_stash++] = m;
		return;
	}
	hand_out(k, m);
}

/* Whether the consumer queue may be polled now. */
static int may_poll(const struct kafka *k)
{
	if (k->closing || k->n_stash >= KAFKA_STASH_MAX)
		return 0;
	/* While intake is off but not yet paused, leave the messages in
	 * librdkafka's queue; once paused, poll for rebalances. */
	return k->intake || k->paused || k->revoke != REVOKE_NONE;
}

static void serve_consumer(struct kafka *k)
{
	int n = 0;

	/* Held-back messages first, in order. */
	while (k->n_stash && k->intake && !k->closing && n < KAFKA_BATCH) {
		rd_kafka_message_t *m = k->stash[0];

		memmove(k->stash, k->stash + 1, (k->n_stash - 1) * sizeof(*k->stash));
		k->n_stash--;
		n++;
		if (!list_has(k->assignment, rd_kafka_topic_name(m->rkt), m->partition) ||
		    list_has(k->revoking, rd_kafka_topic_name(m->rkt), m->partition))
			rd_kafka_message_destroy(m);
		else
			take(k, m);
	}
	while (n < KAFKA_BATCH && may_poll(k)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer, 0);

		if (!m)
			return;
		n++;
		take(k, m);
	}
	if (n >= KAFKA_BATCH)
		kick(k); /* more may wait: go on in the next loop pass */
}

static void serve_commits(struct kafka *k)
{
	rd_kafka_event_t *ev;

	while ((ev = rd_kafka_queue_poll(k->commitq, 0)) != NULL) {
		if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
			rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
			uintptr_t gen = (uintptr_t)rd_kafka_event_opaque(ev);

			if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
				log_warn("revoke: offset commit failed", "error=\"%s\"",
					 rd_kafka_err2str(err));
			if (k->revoke == REVOKE_COMMIT && gen == k->commit_gen)
				finish_revoke(k);
		}
		rd_kafka_event_destroy(ev);
	}
}

static void serve_close(struct kafka *k)
{
	rd_kafka_event_t *ev;

	while (k->closeq && (ev = rd_kafka_queue_poll(k->closeq, 0)) != NULL) {
		switch (rd_kafka_event_type(ev)) {
		case RD_KAFKA_EVENT_REBALANCE:
			rebalance(k, rd_kafka_event_error(ev),
				  rd_kafka_event_topic_partition_list(ev));
			break;
		case RD_KAFKA_EVENT_ERROR:
			log_warn("kafka consumer error while closing", "error=\"%s\"",
				 rd_kafka_event_error_string(ev));
			break;
		case RD_KAFKA_EVENT_OFFSET_COMMIT:
			if (rd_kafka_event_error(ev) &&
			    rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR__NO_OFFSET)
				log_warn("offset commit failed while closing", "error=\"%s\"",
					 rd_kafka_event_error_string(ev));
			break;
		default:
			break; /* fetched messages: not handed out, not stored */
		}
		rd_kafka_event_destroy(ev);
	}
	if (!k->closed_reported && k->revoke == REVOKE_NONE &&
	    (k->close_failed || rd_kafka_consumer_closed(k->consumer))) {
		k->closed_reported = 1;
		log_info("kafka consumer closed", "%s", "");
		if (k->cb.on_closed)
			k->cb.on_closed(k->cb.arg);
	}
}

static void serve(struct kafka *k)
{
	if (k->serving)
		return;
	k->serving = 1;
	rd_kafka_poll(k->producer, 0);
	rd_kafka_poll(k->consumer, 0);
	serve_commits(k);
	if (k->closing) {
		serve_close(k);
	} else {
		serve_consumer(k);
	}
	revoke_progress(k);
	if (k->closing && !k->closed_reported)
		serve_close(k);
	k->serving = 0;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[256];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	serve(arg);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kafka *k = arg;

	(void)fd;
	(void)what;
	if (!k->intake && !k->paused && !k->closing &&
	    clock_mono_ms() - k->intake_off_ms >= KAFKA_PAUSE_AFTER_MS) {
		k->paused = 1;
		log_info("message intake stalled, pausing partitions", "after_ms=%d",
			 KAFKA_PAUSE_AFTER_MS);
		pause_resume(k, k->assignment, 1);
	}
	serve(k);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	serve(arg);
}

/* ---- construction ------------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
		    char *err, size_t errlen)
{
	char why[512];

	if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "rdkafka property \"%s\": %s", key, why);
		return -1;
	}
	return 0;
}

/* The caller's PROMO_WEBHOOKS_RDKAFKA_* properties, after ours. */
static int conf_passthrough(rd_kafka_conf_t *conf, const struct config *cfg,
			    char *err, size_t errlen)
{
	size_t i, j;

	for (i = 0; i < cfg->n_rdkafka; i++) {
		const char *key = cfg->rdkafka[i].key;

		/* config_load refused these already: this only guards a
		 * configuration built some other way (tests). */
		for (j = 0; config_rdkafka_refused[j]; j++) {
			if (strcmp(key, config_rdkafka_refused[j]) == 0) {
				snprintf(err, errlen,
					 "rdkafka property \"%s\" is set by the service "
					 "and cannot be overridden",
					 key);
				return -1;
			}
		}
		if (conf_set(conf, key, cfg->rdkafka[i].value, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/*
 * librdkafka's prefetch, sized from the in-flight bound instead of its
 * default (64 MiB queued, and a fetch response of up to 50 MiB): the
 * prefetch only has to cover the events the service may take next,
 * KAFKA_PREFETCH_KB_PER KiB per in-flight slot, between KAFKA_PREFETCH_KB_MIN
 * and 64 MiB, in fetch responses of at most KAFKA_FETCH_MAX_BYTES.
 *
 * Why 3 KiB per slot: librdkafka 2.0.2 stops fetching for a whole second
 * once the queue is full (fetch.queue.backoff.ms, which shortens that,
 * came in 2.1), so the queue must hold about a second of what the service
 * takes at full speed, or intake starves after every stall at the bound:
 * with 4 MiB the fan-out 1 benchmark drained 16,760 events/s, with 12 MiB
 * 29,568/s. Why small responses: a response's buffer lives until its last
 * message is destroyed, so responses as large as the queue doubled the
 * resident cost of the prefetch (12 MiB queued in 12 MiB responses: +34
 * MiB; in 1 MiB responses: +9 MiB). PROMO_WEBHOOKS_RDKAFKA_QUEUED_MAX_
 * MESSAGES_KBYTES / _FETCH_MAX_BYTES override both (applied after).
 * README, "Backpressure", has the memory bound.
 */
#define KAFKA_PREFETCH_KB_PER 3
#define KAFKA_PREFETCH_KB_MIN 2048
#define KAFKA_PREFETCH_KB_MAX 65536
#define KAFKA_FETCH_MAX_BYTES "1048576"
/*
 * A fetch waits up to KAFKA_FETCH_WAIT_MS for KAFKA_FETCH_MIN_BYTES to
 * gather on the broker. librdkafka's defaults (any byte, 500 ms) answer a
 * fetch as soon as one message is there, so a busy topic is fetched about
 * once a millisecond, a few messages at a time: at 12,000 events/s that
 * cost the broker a quarter of a core per consumer (a producer alone: 0.3
 * core), and with the broker, the producer, the service and a receiver on
 * two cores, the whole machine fell behind (benchmark latency runs,
 * README "Performance"). Waiting up to 10 ms cut the consumer's share to a
 * third; it adds at most those 10 ms to a delivery, nothing at high rates.
 */
#define KAFKA_FETCH_WAIT_MS "10"
#define KAFKA_FETCH_MIN_BYTES "262144"

static long prefetch_kbytes(const struct config *cfg)
{
	long kb = cfg->max_in_flight > 0 ? cfg->max_in_flight * KAFKA_PREFETCH_KB_PER : 0;

	if (kb < KAFKA_PREFETCH_KB_MIN)
		kb = KAFKA_PREFETCH_KB_MIN;
	if (kb > KAFKA_PREFETCH_KB_MAX)
		kb = KAFKA_PREFETCH_KB_MAX;
	return kb;
}

static rd_kafka_t *consumer_new(struct kafka *k, const struct config *cfg, char *err,
				size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char why[512], queued_kb[24];
	rd_kafka_t *rk;

	if (!conf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(queued_kb, sizeof(queued_kb), "%ld", prefetch_kbytes(cfg));
	if (conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, err, errlen) < 0 ||
	    conf_set(conf, "group.id", cfg->kafka_group, err, errlen) < 0 ||
	    conf_set(conf, "queued.max.messages.kbytes", queued_kb, err, errlen) < 0 ||
	    conf_set(conf, "fetch.max.bytes", KAFKA_FETCH_MAX_BYTES, err, errlen) < 0 ||
	    conf_set(conf, "fetch.wait.max.ms", KAFKA_FETCH_WAIT_MS, err, errlen) < 0 ||
	    conf_set(conf, "fetch.min.bytes", KAFKA_FETCH_MIN_BYTES, err, errlen) < 0 ||
	    conf_set(conf, "client.id", "promo-webhooks", err, errlen) < 0 ||
	    conf_set(conf, "enable.auto.offset.store", "false", err, errlen) < 0 ||
	    conf_set(conf, "enable.auto.commit", "true", err, errlen) < 0 ||
	    conf_set(conf, "auto.commit.interval.ms", "1000", err, errlen) < 0 ||
	    conf_set(conf, "auto.offset.reset", "earliest", err, errlen) < 0 ||
	    conf_set(conf, "partition.assignment.strategy", "range", err, errlen) < 0 ||
	    conf_set(conf, "enable.partition.eof", "false", err, errlen) < 0 ||
	    conf_set(conf, "statistics.interval.ms", KAFKA_STATS_INTERVAL_MS, err,
		     errlen) < 0 ||
	    conf_set(conf, "log.queue", "true", err, errlen) < 0 ||
	    conf_passthrough(conf, cfg, err, errlen) < 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_stats_cb(conf, stats_cb);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!rk) {
		snprintf(err, errlen, "kafka consumer: %s", why);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	/* conf is owned by rk now */
	return rk;
}

static rd_kafka_t *producer_new(struct kafka *k, const struct config *cfg, char *err,
				size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char why[512];
	rd_kafka_t *rk;

	if (!conf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, err, errlen) < 0 ||
	    conf_set(conf, "client.id", "promo-webhooks", err, errlen) < 0 ||
	    conf_set(conf, "enable.idempotence", "true", err, errlen) < 0 ||
	    conf_set(conf, "acks", "all", err, errlen) < 0 ||
	    conf_set(conf, "linger.ms", "5", err, errlen) < 0 ||
	    conf_set(conf, "log.queue", "true", err, errlen) < 0 ||
	    conf_passthrough(conf, cfg, err, errlen) < 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (!rk) {
		snprintf(err, errlen, "kafka producer: %s", why);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return rk;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

static void wake_on(struct kafka *k, rd_kafka_queue_t *q)
{
	rd_kafka_queue_io_event_enable(q, k->wake_fd[1], "k", 1);
}

struct kafka *kafka_new(struct event_base *base, const struct config *cfg,
			const struct kafka_callbacks *cb, char *err, size_t errlen)
{
	struct timeval tick = { 0, KAFKA_TICK_MS * 1000 };
	rd_kafka_topic_partition_list_t *topics = NULL;
	rd_kafka_resp_err_t e;
	struct kafka *k;
	size_t i;

	k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->wake_fd[0] = k->wake_fd[1] = -1;
	pthread_mutex_init(&k->watch_lock, NULL);
	pthread_cond_init(&k->watch_cond, NULL);
	snprintf(k->watched[0].name, sizeof(k->watched[0].name), "%s", cfg->dead_letter_topic);
	snprintf(k->watched[1].name, sizeof(k->watched[1].name), "%s", cfg->email_topic);
	k->base = base;
	k->cb = *cb;
	k->revoke_wait_ms = cfg->shutdown_grace_ms;
	if (k->revoke_wait_ms <= 0 || k->revoke_wait_ms > KAFKA_REVOKE_MAX_WAIT_MS)
		k->revoke_wait_ms = KAFKA_REVOKE_MAX_WAIT_MS;
	k->intake_off_ms = clock_mono_ms();
	k->stash = calloc(KAFKA_STASH_MAX, sizeof(*k->stash));
	if (!k->stash) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (pipe(k->wake_fd) < 0 || set_nonblock(k->wake_fd[0]) < 0 ||
	    set_nonblock(k->wake_fd[1]) < 0) {
		snprintf(err, errlen, "cannot create wake-up pipe: %s", strerror(errno));
		goto fail;
	}
	k->consumer = consumer_new(k, cfg, err, errlen);
	if (!k->consumer)
		goto fail;
	k->producer = producer_new(k, cfg, err, errlen);
	if (!k->producer)
		goto fail;

	k->cmain = rd_kafka_queue_get_main(k->consumer);
	k->cq = rd_kafka_queue_get_consumer(k->consumer);
	k->commitq = rd_kafka_queue_new(k->consumer);
	k->pmain = rd_kafka_queue_get_main(k->producer);
	if (!k->cmain || !k->cq || !k->commitq || !k->pmain) {
		snprintf(err, errlen, "cannot get kafka queues");
		goto fail;
	}
	if (rd_kafka_set_log_queue(k->consumer, NULL) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    rd_kafka_set_log_queue(k->producer, NULL) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "cannot route kafka logs to the loop");
		goto fail;
	}
	wake_on(k, k->cmain);
	wake_on(k, k->cq);
	wake_on(k, k->commitq);
	wake_on(k, k->pmain);

	k->wake_ev = event_new(base, k->wake_fd[0], EV_READ | EV_PERSIST, wake_cb, k);
	k->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, k);
	k->kick_ev = event_new(base, -1, 0, kick_cb, k);
	if (!k->wake_ev || !k->tick_ev || !k->kick_ev || event_add(k->wake_ev, NULL) < 0 ||
	    event_add(k->tick_ev, &tick) < 0) {
		snprintf(err, errlen, "cannot create kafka loop events");
		goto fail;
	}

	topics = rd_kafka_topic_partition_list_new((int)cfg->n_event_topics);
	if (!topics) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < cfg->n_event_topics; i++)
		rd_kafka_topic_partition_list_add(topics, cfg->event_topics[i],
						  RD_KAFKA_PARTITION_UA);
	e = rd_kafka_subscribe(k->consumer, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (e) {
		snprintf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(e));
		goto fail;
	}
	if (pthread_create(&k->watch_thread, NULL, watch_main, k) != 0) {
		snprintf(err, errlen, "cannot start the topic checker thread");
		goto fail;
	}
	k->watch_started = 1;
	return k;
fail:
	kafka_free(k);
	return NULL;
}

void kafka_free(struct kafka *k)
{
	if (!k)
		return;
	if (k->watch_started) {
		pthread_mutex_lock(&k->watch_lock);
		k->watch_stop = 1;
		pthread_cond_signal(&k->watch_cond);
		pthread_mutex_unlock(&k->watch_lock);
		pthread_join(k->watch_thread, NULL);
	}
	if (k->wake_ev)
		event_free(k->wake_ev);
	if (k->tick_ev)
		event_free(k->tick_ev);
	if (k->kick_ev)
		event_free(k->kick_ev);
	k->kick_ev = NULL;
	if (k->stash)
		stash_drop(k, NULL);
	if (k->cmain)
		rd_kafka_queue_destroy(k->cmain);
	if (k->cq)
		rd_kafka_queue_destroy(k->cq);
	if (k->commitq)
		rd_kafka_queue_destroy(k->commitq);
	if (k->closeq)
		rd_kafka_queue_destroy(k->closeq);
	if (k->consumer) {
		/* Closed already, or never joined: no blocking close here. */
		rd_kafka_destroy_flags(k->consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	if (k->producer) {
		/* Whatever is still unacknowledged completes with ok=0. */
		rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_flush(k->producer, 1000);
		if (k->pmain)
			rd_kafka_queue_destroy(k->pmain);
		rd_kafka_destroy(k->producer);
	} else if (k->pmain) {
		rd_kafka_queue_destroy(k->pmain);
	}
	if (k->assignment)
		rd_kafka_topic_partition_list_destroy(k->assignment);
	if (k->revoking)
		rd_kafka_topic_partition_list_destroy(k->revoking);
	if (k->wake_fd[0] >= 0)
		close(k->wake_fd[0]);
	if (k->wake_fd[1] >= 0)
		close(k->wake_fd[1]);
	stats_free(k);
	free(k->hdrs);
	free(k->stash);
	pthread_cond_destroy(&k->watch_cond);
	pthread_mutex_destroy(&k->watch_lock);
	free(k);
}

/* ---- public API --------------------------------------------------------- */

void kafka_set_intake(struct kafka *k, int on)
{
	on = on ? 1 : 0;
	if (k->closing || k->intake == on)
		return;
	k->intake = on;
	if (!on) {
		k->intake_off_ms = clock_mono_ms();
		return;
	}
	if (k->paused) {
		k->paused = 0;
		log_info("message intake resumed, resuming partitions", "%s", "");
		pause_resume(k, k->assignment, 0);
	}
	kick(k);
}

int kafka_store_offset(struct kafka *k, const char *topic, int32_t partition,
		       int64_t offset)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_t *p;
	rd_kafka_resp_err_t err;
	int rc;

	if (!l)
		return -1;
	p = rd_kafka_topic_partition_list_add(l, topic, partition);
	p->offset = offset;
	err = rd_kafka_offsets_store(k->consumer, l);
	rc = err || p->err ? -1 : 0;
	if (rc < 0)
		log_debug("offset not stored", "topic=%s partition=%" PRId32
			  " offset=%" PRId64 " error=\"%s\"",
			  topic, partition, offset, rd_kafka_err2str(err ? err : p->err));
	rd_kafka_topic_partition_list_destroy(l);
	return rc;
}

int kafka_in_group(const struct kafka *k)
{
	return k->in_group && !k->fatal && !k->closing;
}

enum kafka_produce_result kafka_produce(struct kafka *k, const char *topic,
					const void *key, size_t key_len,
					const void *value, size_t value_len,
					const struct event_header *headers,
					size_t n_headers,
					kafka_produce_done_fn *done, void *arg,
					char *err, size_t errlen)
{
	rd_kafka_headers_t *hdrs = NULL;
	struct produce_ctx *pc;
	rd_kafka_resp_err_t e;
	enum kafka_produce_result r;
	size_t i;

	pc = malloc(sizeof(*pc));
	if (!pc) {
		snprintf(err, errlen, "out of memory");
		return KAFKA_PRODUCE_FAILED;
	}
	pc->done = done;
	pc->arg = arg;
	if (n_headers) {
		hdrs = rd_kafka_headers_new(n_headers);
		if (!hdrs) {
			free(pc);
			snprintf(err, errlen, "out of memory");
			return KAFKA_PRODUCE_FAILED;
		}
		for (i = 0; i < n_headers; i++) {
			e = rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
						headers[i].value ? (ssize_t)headers[i].value_len
								 : 0);
			if (e) {
				snprintf(err, errlen, "header %s: %s", headers[i].name,
					 rd_kafka_err2str(e));
				rd_kafka_headers_destroy(hdrs);
				free(pc);
				return KAFKA_PRODUCE_FAILED;
			}
		}
	}
	/* RD_KAFKA_MSG_F_COPY: librdkafka copies key and value, so the
	 * const-ness is only lost in the API's signature. */
	e = rd_kafka_producev(k->producer, RD_KAFKA_V_TOPIC(topic),
			      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			      RD_KAFKA_V_KEY((void *)(uintptr_t)key, key ? key_len : 0),
			      RD_KAFKA_V_VALUE((void *)(uintptr_t)value,
					       value ? value_len : 0),
			      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(pc),
			      RD_KAFKA_V_END);
	if (e) {
		snprintf(err, errlen, "%s", rd_kafka_err2str(e));
		if (hdrs)
			rd_kafka_headers_destroy(hdrs); /* still ours on failure */
		free(pc);
		r = classify(e);
		if (r == KAFKA_PRODUCED)
			r = KAFKA_PRODUCE_FAILED;
		watch_note(k, topic, r, err);
		return r;
	}
	return KAFKA_PRODUCED;
}

static void metric_label(struct buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			buf_addc(out, '\\');
		if (*s == '\n') {
			buf_adds(out, "\\n");
			continue;
		}
		buf_addc(out, *s);
	}
}

static const struct part_stats *stats_find(const struct kafka *k, const char *topic,
					   int32_t partition)
{
	size_t i;

	for (i = 0; i < k->n_stats; i++)
		if (k->stats[i].partition == partition && strcmp(k->stats[i].topic, topic) == 0)
			return &k->stats[i];
	return NULL;
}

static void metric_lines(const struct kafka *k, struct buf *out, const char *name,
			 int committed)
{
	int i;

	for (i = 0; k->assignment && i < k->assignment->cnt; i++) {
		const rd_kafka_topic_partition_t *p = &k->assignment->elems[i];
		const struct part_stats *s = stats_find(k, p->topic, p->partition);
		int64_t v;

		if (!s)
			continue;
		v = committed ? s->committed : s->lag;
		if (v < 0)
			continue;
		buf_addf(out, "%s{topic=\"", name);
		metric_label(out, p->topic);
		buf_addf(out, "\",partition=\"%" PRId32 "\"} %" PRId64 "\n", p->partition, v);
	}
}

void kafka_metrics(const struct kafka *k, struct buf *out)
{
	prom_family(out, "promo_webhooks_kafka_consumer_lag", "gauge",
		    "Messages between the group's committed offset and the end of the partition, per assigned partition.");
	metric_lines(k, out, "promo_webhooks_kafka_consumer_lag", 0);
	prom_family(out, "promo_webhooks_kafka_committed_offset", "gauge",
		    "The group's committed offset, per assigned partition.");
	metric_lines(k, out, "promo_webhooks_kafka_committed_offset", 1);
	prom_family(out, "promo_webhooks_output_topic_unwritable", "gauge",
		    "1 while an output topic (dead-letter, email) is missing or refused the last write, per topic.");
	{
		/* The lock is the only thing written; the topics are not. */
		struct kafka *mk = (struct kafka *)(uintptr_t)k;
		size_t i;

		pthread_mutex_lock(&mk->watch_lock);
		for (i = 0; i < KAFKA_WATCHED; i++) {
			const struct watched_topic *w = &mk->watched[i];

			if (!w->name[0] || (i > 0 && strcmp(w->name, mk->watched[0].name) == 0))
				continue;
			buf_adds(out, "promo_webhooks_output_topic_unwritable{topic=\"");
			metric_label(out, w->name);
			buf_addf(out, "\"} %d\n", w->missing || w->refused);
		}
		pthread_mutex_unlock(&mk->watch_lock);
	}
}

void kafka_close(struct kafka *k)
{
	rd_kafka_error_t *error;

	if (k->closing)
		return;
	k->closing = 1;
	k->intake = 0;
	stash_drop(k, NULL);
	/* The caller has drained (or given up on) its work: a revoke that is
	 * waiting for it commits now. */
	if (k->revoke == REVOKE_DRAIN)
		k->revoke_deadline_ms = clock_mono_ms();
	k->closeq = rd_kafka_queue_new(k->consumer);
	if (!k->closeq) {
		log_error("cannot create the kafka close queue", "%s", "");
		k->close_failed = 1;
		kick(k);
		return;
	}
	wake_on(k, k->closeq);
	error = rd_kafka_consumer_close_queue(k->consumer, k->closeq);
	if (error) {
		log_error("kafka consumer close failed", "error=\"%s\"",
			  rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		k->close_failed = 1;
	}
	kick(k);
}

void kafka_flush(struct kafka *k, int timeout_ms)
{
	rd_kafka_resp_err_t err = rd_kafka_flush(k->producer, timeout_ms);

	if (err)
		log_warn("kafka producer flush incomplete", "error=\"%s\" queued=%d",
			 rd_kafka_err2str(err), rd_kafka_outq_len(k->producer));
}
