/*
 * pw-bench-produce: the event producer of the benchmark (tests/bench/run.sh).
 *
 * Produces structured CloudEvents (Product.ImportCompleted) with librdkafka,
 * either as fast as it can (a backlog) or at a fixed rate (the latency run).
 * Every event's data carries "sentUs": the wall clock in microseconds just
 * before the produce call, so that a receiver in latency mode can compute
 * event-to-delivery latency.
 *
 * Usage:
 *   pw-bench-produce -b BROKERS -t TOPIC -n COUNT [--companies a,b,c]
 *       [--rate EVENTS_PER_S] [--seconds S] [--pad BYTES] [--prefix ID_PREFIX]
 *
 *   Event i belongs to company i mod (number of companies); its key is its
 *   id (so events spread over all partitions). With --rate the events are
 *   paced per millisecond; --seconds then bounds the run instead of -n.
 *
 *   --consume  also consume the topic from its end in a thread of this
 *              process (a plain librdkafka consumer, no group; -X
 *              key=value sets its librdkafka settings, the benchmark
 *              passes the service's fetch settings) and report produce-to-consume
 *              latency: the part of event-to-delivery latency that is
 *              Kafka's and the machine's, not the service's.
 *
 * Prints one JSON line: produced, seconds, rate, errors; with --rate the
 * produce-to-acknowledgement times (ack_ms), with --consume the
 * produce-to-consume times (consume_ms).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include "lat_windows.h"

static uint64_t delivered, failed;
static void set(rd_kafka_conf_t *c, const char *k, const char *v);
/* produce-to-acknowledgement times (us), for --rate runs */
static uint32_t *acks;
static size_t n_acks, cap_acks;

static int64_t realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		if (failed++ < 5)
			fprintf(stderr, "pw-bench-produce: delivery failed: %s\n",
				rd_kafka_err2str(m->err));
	} else {
		delivered++;
		if (m->_private) {
			int64_t d = realtime_us() - (int64_t)(intptr_t)m->_private;

			if (n_acks == cap_acks) {
				size_t ncap = cap_acks ? cap_acks * 2 : 65536;
				uint32_t *p = realloc(acks, ncap * sizeof(*p));

				if (!p)
					return;
				acks = p;
				cap_acks = ncap;
			}
			acks[n_acks++] = d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		}
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- the --consume thread ---- */

static rd_kafka_t *crk;
static atomic_int consume_stop;
static uint32_t *cons;
static int64_t *cons_sent; /* each sample's send time */
static size_t n_cons, cap_cons;

static void *consume_main(void *arg)
{
	static const char key[] = "\"sentUs\":";

	(void)arg;
	while (!atomic_load(&consume_stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(crk, 100);
		const char *p;

		if (!m)
			continue;
		if (!m->err && m->payload &&
		    (p = memmem(m->payload, m->len, key, sizeof(key) - 1)) != NULL) {
			int64_t sent = strtoll(p + sizeof(key) - 1, NULL, 10);
			int64_t d = realtime_us() - sent;

			if (n_cons == cap_cons) {
				size_t ncap = cap_cons ? cap_cons * 2 : 65536;
				uint32_t *q = realloc(cons, ncap * sizeof(*q));
				int64_t *qs = q ? realloc(cons_sent, ncap * sizeof(*qs)) : NULL;

				if (q)
					cons = q;
				if (qs) {
					cons_sent = qs;
					cap_cons = ncap;
				}
			}
			if (n_cons < cap_cons) {
				cons_sent[n_cons] = sent;
				cons[n_cons++] = d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
			}
		}
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

/* -X key=value: librdkafka settings of the --consume consumer (the
 * benchmark passes the service's own fetch settings). */
static const char *cconf[16];
static int n_cconf;

/* Starts a consumer of every partition of topic from its end. */
static int consume_start(const char *brokers, const char *topic, pthread_t *th)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_topic_t *t;
	char err[256];
	int i;

	set(conf, "bootstrap.servers", brokers);
	set(conf, "group.id", "pw-bench-consume");
	set(conf, "enable.auto.commit", "false");
	set(conf, "enable.partition.eof", "false");
	for (i = 0; i < n_cconf; i++) {
		char k[128], *eq = strchr(cconf[i], '=');

		if (!eq || (size_t)(eq - cconf[i]) >= sizeof(k)) {
			fprintf(stderr, "pw-bench-produce: -X wants key=value: %s\n", cconf[i]);
			return -1;
		}
		memcpy(k, cconf[i], (size_t)(eq - cconf[i]));
		k[eq - cconf[i]] = '\0';
		set(conf, k, eq + 1);
	}
	crk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!crk) {
		fprintf(stderr, "pw-bench-produce: consumer: %s\n", err);
		return -1;
	}
	rd_kafka_poll_set_consumer(crk);
	t = rd_kafka_topic_new(crk, topic, NULL);
	if (rd_kafka_metadata(crk, 0, t, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    md->topic_cnt != 1 || md->topics[0].partition_cnt < 1) {
		fprintf(stderr, "pw-bench-produce: no metadata for %s\n", topic);
		return -1;
	}
	parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)
			->offset = RD_KAFKA_OFFSET_END;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	if (rd_kafka_assign(crk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return -1;
	rd_kafka_topic_partition_list_destroy(parts);
	if (pthread_create(th, NULL, consume_main, NULL) != 0)
		return -1;
	/* Let the end offsets resolve before anything is produced. */
	{
		struct timespec ts = { 1, 0 };

		nanosleep(&ts, NULL);
	}
	return 0;
}

static void set(rd_kafka_conf_t *c, const char *k, const char *v)
{
	char err[256];

	if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "pw-bench-produce: %s=%s: %s\n", k, v, err);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	const char *brokers = NULL, *topic = NULL, *prefix = "ev";
	char *companies_arg = strdup("acme");
	char *companies[1024];
	int n_comp = 0;
	long long count = 0;
	double rate = 0, secs = 0;
	long pad = 200;
	char *padding, value[8192], key[128], err[256];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	double t0, t1;
	long long i;
	int64_t sent;
	int consume = 0;
	pthread_t cth;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--consume") == 0) {
			consume = 1;
			continue;
		}
		if (a + 1 >= argc)
			goto usage;
		if (strcmp(argv[a], "-b") == 0)
			brokers = argv[++a];
		else if (strcmp(argv[a], "-t") == 0)
			topic = argv[++a];
		else if (strcmp(argv[a], "-n") == 0)
			count = strtoll(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--companies") == 0)
			companies_arg = strdup(argv[++a]);
		else if (strcmp(argv[a], "--rate") == 0)
			rate = strtod(argv[++a], NULL);
		else if (strcmp(argv[a], "--seconds") == 0)
			secs = strtod(argv[++a], NULL);
		else if (strcmp(argv[a], "--pad") == 0)
			pad = strtol(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--prefix") == 0)
			prefix = argv[++a];
		else if (strcmp(argv[a], "-X") == 0 && n_cconf < 16)
			cconf[n_cconf++] = argv[++a];

		else
			goto usage;
	}
	if (!brokers || !topic || (count <= 0 && !(rate > 0 && secs > 0)) || pad < 0 ||
	    pad > 4000)
		goto usage;
	for (char *save = NULL, *tok = strtok_r(companies_arg, ",", &save); tok && n_comp < 1024;
	     tok = strtok_r(NULL, ",", &save))
		companies[n_comp++] = tok;
	if (!n_comp)
		goto usage;
	padding = malloc((size_t)pad + 1);
	memset(padding, 'x', (size_t)pad);
	padding[pad] = 0;

	conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", brokers);
	set(conf, "client.id", "pw-bench-produce");
	set(conf, "acks", "1");
	set(conf, "enable.idempotence", "false");
	set(conf, "linger.ms", rate > 0 ? "5" : "20");
	set(conf, "batch.num.messages", "10000");
	set(conf, "batch.size", "1000000");
	set(conf, "queue.buffering.max.messages", "1000000");
	set(conf, "queue.buffering.max.kbytes", "1048576");
	set(conf, "compression.codec", "none");
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "pw-bench-produce: %s\n", err);
		return 1;
	}
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (consume && consume_start(brokers, topic, &cth) < 0)
		return 1;

	t0 = mono_s();
	for (i = 0;; i++) {
		const char *c;
		int vlen, klen;

		if (rate > 0) {
			/* Pace: never ahead of rate * elapsed. */
			double el = mono_s() - t0;

			if (secs > 0 && el >= secs)
				break;
			if (count > 0 && i >= count)
				break;
			while ((double)i >= rate * el) {
				struct timespec ts = { 0, 200000 };

				rd_kafka_poll(rk, 0);
				nanosleep(&ts, NULL);
				el = mono_s() - t0;
			}
		} else if (i >= count) {
			break;
		}
		c = companies[i % n_comp];
		sent = realtime_us();
		klen = snprintf(key, sizeof(key), "%s-%lld", prefix, i);
		vlen = snprintf(value, sizeof(value),
				"{\"specversion\":\"1.0\",\"id\":\"%s-%lld\",\"source\":\"/bench\","
				"\"type\":\"Product.ImportCompleted\",\"time\":\"2026-11-28T09:00:00Z\","
				"\"companyid\":\"%s\",\"data\":{\"importId\":\"%s-%lld\",\"seq\":%lld,"
				"\"sentUs\":%" PRId64 ",\"status\":\"Completed\",\"pad\":\"%s\"}}",
				prefix, i, c, prefix, i, i, sent, padding);
		while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, value,
					(size_t)vlen, key, (size_t)klen,
					rate > 0 ? (void *)(intptr_t)sent : NULL) != 0) {
			if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				fprintf(stderr, "pw-bench-produce: produce: %s\n",
					rd_kafka_err2str(rd_kafka_last_error()));
				return 1;
			}
			rd_kafka_poll(rk, 10);
		}
		if ((i & 1023) == 0)
			rd_kafka_poll(rk, 0);
	}
	t1 = mono_s() + 120;
	while (rd_kafka_outq_len(rk) > 0 && mono_s() < t1)
		rd_kafka_poll(rk, 50);
	if (rd_kafka_outq_len(rk) > 0) {
		fprintf(stderr, "pw-bench-produce: %d messages not delivered in time\n",
			rd_kafka_outq_len(rk));
		failed++;
	}
	t1 = mono_s();
	printf("{\"produced\":%" PRIu64 ",\"seconds\":%.3f,\"rate\":%.0f,\"errors\":%" PRIu64,
	       delivered, t1 - t0, (double)delivered / (t1 - t0), failed);
	if (n_acks) {
		/* how long the broker took to acknowledge: the Kafka share of
		 * the event-to-delivery latency */
		qsort(acks, n_acks, sizeof(*acks), cmp_u32);
		printf(",\"ack_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
		       acks[n_acks / 2] / 1000.0, acks[(size_t)((double)n_acks * 0.99)] / 1000.0,
		       acks[n_acks - 1] / 1000.0);
	}
	if (consume) {
		/* The last ones arrive within a fetch wait. */
		struct timespec ts = { 1, 0 };

		nanosleep(&ts, NULL);
		atomic_store(&consume_stop, 1);
		pthread_join(cth, NULL);
		if (n_cons) {
			int64_t first;
			size_t nw;
			uint32_t *w = lat_windows(cons_sent, cons, n_cons, &first, &nw);

			if (w) {
				printf(",\"consume_windows\":{\"first\":%" PRId64
				       ",\"width_us\":%d,\"max_us\":[", first, LAT_WINDOW_US);
				for (size_t k = 0; k < nw; k++)
					printf("%s%u", k ? "," : "", w[k]);
				printf("]}");
				free(w);
			}
			qsort(cons, n_cons, sizeof(*cons), cmp_u32);
			printf(",\"consume_ms\":{\"samples\":%zu,\"p50\":%.3f,\"p99\":%.3f,"
			       "\"max\":%.3f}",
			       n_cons, cons[n_cons / 2] / 1000.0,
			       cons[(size_t)((double)n_cons * 0.99)] / 1000.0,
			       cons[n_cons - 1] / 1000.0);
		}
		rd_kafka_consumer_close(crk);
		rd_kafka_destroy(crk);
	}
	printf("}\n");
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return failed ? 1 : 0;
usage:
	fprintf(stderr, "usage: pw-bench-produce -b BROKERS -t TOPIC -n COUNT [--companies a,b] "
			"[--rate R] [--seconds S] [--pad BYTES] [--prefix P] [--consume]\n");
	return 2;
}
