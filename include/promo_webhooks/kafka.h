/*
 * kafka: the consumer group and the producer on the event loop; the only
 * module that includes librdkafka (pipeline stages 1 and 7).
 *
 * The consumer hands each message to on_message as a view valid only during
 * the call. Offsets are never committed by position: the caller stores, per
 * partition, the offset of the next message to consume once everything
 * before it is done (kafka_store_offset), and librdkafka's auto-commit
 * commits what was stored. On a revoke the module stops handing out
 * messages, waits (bounded) until the caller reports no work in flight on
 * the revoked partitions, commits, and only then gives the partitions up,
 * so a healthy rebalance redelivers nothing.
 */
#ifndef PROMO_WEBHOOKS_KAFKA_H
#define PROMO_WEBHOOKS_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/config.h"
#include "promo_webhooks/event.h"

struct event_base;
struct kafka;

/* A consumed message; every pointer is valid only during on_message. */
struct kafka_message {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const void *key;                    /* NULL when the message has none */
	size_t key_len;
	const void *value;                  /* NULL for a tombstone */
	size_t value_len;
	const struct event_header *headers; /* in message order */
	size_t n_headers;
	int64_t timestamp_ms;               /* -1 when unknown */
};

struct kafka_partition {
	const char *topic;
	int32_t partition;
};

struct kafka_callbacks {
	/* A message to process. Called only while intake is on. */
	void (*on_message)(void *arg, const struct kafka_message *m);
	/* Partitions now assigned to this member. */
	void (*on_assigned)(void *arg, const struct kafka_partition *parts,
			    size_t n);
	/* How many messages of a partition are still in flight; asked while
	 * a revoke waits for work to drain. */
	size_t (*in_flight)(void *arg, const char *topic, int32_t partition);
	/* Partitions given up (after draining, or at once when lost=1): the
	 * caller forgets their in-flight work; its completions no longer
	 * count. */
	void (*on_revoked)(void *arg, const struct kafka_partition *parts,
			   size_t n, int lost);
	/* kafka_close finished: the consumer has left the group. */
	void (*on_closed)(void *arg);
	void *arg;
};

/*
 * Creates the consumer (subscribed to cfg->event_topics in group
 * cfg->kafka_group) and the idempotent producer, driven by base. Intake
 * starts off: call kafka_set_intake(k, 1) when ready to process. Returns
 * NULL with err set when librdkafka refuses the configuration.
 */
struct kafka *kafka_new(struct event_base *base, const struct config *cfg,
			const struct kafka_callbacks *cb, char *err,
			size_t errlen);
/* Destroys both clients; call after on_closed (or when never started). */
void kafka_free(struct kafka *k);

/* Turns message intake on or off (backpressure, shutdown). While off, no
 * on_message is called; a long stall pauses the partitions so the group
 * stays healthy, and turning intake on resumes them. */
void kafka_set_intake(struct kafka *k, int on);

/* Stores offset (the next one to consume) for commit. Returns 0, or -1 when
 * the partition is no longer assigned (then nothing is stored). */
int kafka_store_offset(struct kafka *k, const char *topic, int32_t partition,
		       int64_t offset);

/* 1 while the consumer is a member of its group with an assignment
 * (possibly empty); 0 before the first join, after a fatal error or a lost
 * assignment. */
int kafka_in_group(const struct kafka *k);

/* How a produce ended. Only KAFKA_PRODUCE_FAILED is worth trying again as
 * it is; the other failures are permanent for that message or topic. */
enum kafka_produce_result {
	KAFKA_PRODUCED = 0,        /* the broker acknowledged the message */
	KAFKA_PRODUCE_FAILED,      /* transient (broker away, queue full,
				    * timeout): retry with backoff */
	KAFKA_PRODUCE_TOO_LARGE,   /* over the producer's message.max.bytes or
				    * the broker's limit: never succeeds as it
				    * is, a smaller message may */
	KAFKA_PRODUCE_REFUSED,     /* the topic does not exist or refuses this
				    * client's writes: kafka_topic_problems
				    * names it until a produce succeeds */
};

const char *kafka_produce_result_name(enum kafka_produce_result r);

/* Completion of kafka_produce; err says why when result is not
 * KAFKA_PRODUCED. Called from the loop. */
typedef void kafka_produce_done_fn(void *arg, enum kafka_produce_result result,
				   const char *err);

/*
 * Produces one message (key may be NULL). Copies everything. done is called
 * exactly once, never from inside this call. Returns KAFKA_PRODUCED (0)
 * when the message was queued, else why it could not even be queued (done
 * not called), err says more.
 */
enum kafka_produce_result kafka_produce(struct kafka *k, const char *topic,
					const void *key, size_t key_len,
					const void *value, size_t value_len,
					const struct event_header *headers,
					size_t n_headers,
					kafka_produce_done_fn *done, void *arg,
					char *err, size_t errlen);

/* An output topic (dead-letter or email) that cannot take messages. */
struct kafka_topic_problem {
	char topic[256];
	char reason[160];
};

/* The output topics (cfg's dead-letter and email topics) that are missing
 * (a metadata check every KAFKA_TOPIC_CHECK_MS, on a thread of its own) or
 * refused the last message produced to them. Fills up to max entries and
 * returns how many there are. For /readyz. */
size_t kafka_topic_problems(struct kafka *k, struct kafka_topic_problem *out,
			    size_t max);

/* Appends the Prometheus lines the module owns:
 * promo_webhooks_kafka_consumer_lag{topic,partition} and the committed
 * offset per assigned partition, from librdkafka's statistics, and
 * promo_webhooks_output_topic_unwritable{topic} for the output topics. */
void kafka_metrics(const struct kafka *k, struct buf *out);

/* Stops intake, starts leaving the group; on_closed follows. Stored
 * offsets are committed on the way out. */
void kafka_close(struct kafka *k);
/* Waits (up to timeout_ms) for produced messages to be acknowledged. */
void kafka_flush(struct kafka *k, int timeout_ms);

#endif
