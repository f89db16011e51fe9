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
 * Prints one JSON line: produced, seconds, rate, errors.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static uint64_t delivered, failed;
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

	for (int a = 1; a < argc; a++) {
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
	set(conf, "linger.ms", rate > 0 ? "1" : "20");
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
	printf("}\n");
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return failed ? 1 : 0;
usage:
	fprintf(stderr, "usage: pw-bench-produce -b BROKERS -t TOPIC -n COUNT [--companies a,b] "
			"[--rate R] [--seconds S] [--pad BYTES] [--prefix P]\n");
	return 2;
}
