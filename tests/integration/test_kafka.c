/*
 * Integration test of the kafka module against a real broker
 * ($KAFKA_BOOTSTRAP, exported by the kafka test fixture): produce with
 * kafka_produce, consume with kafka_new, store offsets, close, and check
 * what the group committed and where a restarted member resumes; intake
 * off and on (short, and long enough to pause) loses and duplicates
 * nothing; a rebalance waits for in-flight work and redelivers nothing;
 * metrics; configuration pass-through errors.
 *
 * The test itself uses librdkafka directly only to create its topic and to
 * read the group's committed offsets.
 */
#include "promo_webhooks/kafka.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "promo_webhooks/log.h"
#include "testutil.h"

#define NPART 3
#define MAX_RECORDS 20000

static struct event_base *base;
static const char *bootstrap;
static char topic[128];
static char group[128];

/* ---- helpers --------------------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until *flag (when given) becomes non-zero or ms pass.
 * Returns whether the flag was reached. */
typedef int cond_fn(void *arg);

static int run_until(cond_fn *cond, void *arg, int ms)
{
	struct timeval tv = { 0, 10000 };
	struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
	int64_t end = mono_ms() + ms;
	int ok = 0;

	event_add(t, &tv);
	while (mono_ms() < end) {
		if (cond && cond(arg)) {
			ok = 1;
			break;
		}
		event_base_loop(base, EVLOOP_ONCE);
	}
	if (!ok && cond)
		ok = cond(arg);
	event_free(t);
	return ok;
}

static void run_for(int ms)
{
	run_until(NULL, NULL, ms);
}

static int create_topic(const char *name, int partitions)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	rd_kafka_NewTopic_t *nt;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	int rc = -1;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK)
		return -1;
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "admin client: %s\n", errstr);
		return -1;
	}
	nt = rd_kafka_NewTopic_new(name, partitions, 1, errstr, sizeof(errstr));
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	if (ev) {
		const rd_kafka_CreateTopics_result_t *res =
			rd_kafka_event_CreateTopics_result(ev);
		size_t n = 0;
		const rd_kafka_topic_result_t **tr =
			res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;

		if (rd_kafka_event_error(ev))
			fprintf(stderr, "create topic: %s\n", rd_kafka_event_error_string(ev));
		else if (n == 1 && rd_kafka_topic_result_error(tr[0]) == 0)
			rc = 0;
		else if (n == 1)
			fprintf(stderr, "create topic: %s\n",
				rd_kafka_topic_result_error_string(tr[0]));
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return rc;
}

/* The group's committed offset per partition (-1001 when none). */
static int committed(int64_t out[NPART])
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t err;
	rd_kafka_t *rk;
	int i;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) !=
		    RD_KAFKA_CONF_OK)
		return -1;
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!rk)
		return -1;
	l = rd_kafka_topic_partition_list_new(NPART);
	for (i = 0; i < NPART; i++)
		rd_kafka_topic_partition_list_add(l, topic, i);
	err = rd_kafka_committed(rk, l, 10000);
	for (i = 0; i < NPART; i++)
		out[i] = l->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return err ? -1 : 0;
}

/* ---- a test member --------------------------------------------------- */

struct record {
	int32_t partition;
	int64_t offset;
};

struct member {
	const char *name;
	struct kafka *k;
	struct record *rec;
	size_t n_rec;
	int assigned_calls;
	int n_assigned;
	int revoked_calls;
	int lost_calls;
	int64_t revoked_at_ms;
	int closed;
	int in_flight_asked;
	size_t busy;            /* what in_flight answers, per partition */
	int header_checked;
	int on_message_while_off;
	int intake;             /* what the test last asked for */
};

static void m_on_message(void *arg, const struct kafka_message *m)
{
	struct member *mb = arg;

	if (!mb->intake)
		mb->on_message_while_off++;
	CHECK_STR(m->topic, topic);
	CHECK(m->partition >= 0 && m->partition < NPART);
	if (mb->n_rec < MAX_RECORDS) {
		mb->rec[mb->n_rec].partition = m->partition;
		mb->rec[mb->n_rec].offset = m->offset;
		mb->n_rec++;
	}
	/* Every message of this test carries the same three headers. */
	if (m->n_headers == 3 && m->key && m->value) {
		CHECK_STR(m->headers[0].name, "h1");
		CHECK_INT(m->headers[0].value_len, 2);
		CHECK(m->headers[0].value && memcmp(m->headers[0].value, "v1", 2) == 0);
		CHECK_STR(m->headers[1].name, "null");
		CHECK(m->headers[1].value == NULL);
		CHECK_STR(m->headers[2].name, "bin");
		CHECK_INT(m->headers[2].value_len, 3);
		CHECK(m->headers[2].value && memcmp(m->headers[2].value, "a\0b", 3) == 0);
		CHECK(m->key_len > 4 && memcmp(m->key, "key-", 4) == 0);
		CHECK(m->value_len > 0);
		CHECK(m->timestamp_ms > 0);
		mb->header_checked++;
	} else {
		CHECK(!"message without the expected headers, key and value");
	}
}

static void m_on_assigned(void *arg, const struct kafka_partition *parts, size_t n)
{
	struct member *mb = arg;
	size_t i;

	mb->assigned_calls++;
	mb->n_assigned = (int)n;
	for (i = 0; i < n; i++)
		CHECK_STR(parts[i].topic, topic);
}

static size_t m_in_flight(void *arg, const char *t, int32_t partition)
{
	struct member *mb = arg;

	(void)t;
	(void)partition;
	mb->in_flight_asked++;
	return mb->busy;
}

static void m_on_revoked(void *arg, const struct kafka_partition *parts, size_t n,
			 int lost)
{
	struct member *mb = arg;

	(void)parts;
	(void)n;
	mb->revoked_calls++;
	mb->lost_calls += lost;
	mb->revoked_at_ms = mono_ms();
	mb->n_assigned = 0;
}

static void m_on_closed(void *arg)
{
	struct member *mb = arg;

	mb->closed = 1;
}

static void config_for(struct config *cfg, char **topics, struct config_kv *kv,
		       size_t n_kv)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kafka_brokers = (char *)(uintptr_t)bootstrap;
	cfg->kafka_group = group;
	cfg->event_topics = topics;
	cfg->n_event_topics = 1;
	cfg->shutdown_grace_ms = 10000;
	cfg->rdkafka = kv;
	cfg->n_rdkafka = n_kv;
}

static char *topics_arr[1] = { topic };
static struct config_kv fast_kv[] = {
	{ (char *)"statistics.interval.ms", (char *)"1000" },
	{ (char *)"session.timeout.ms", (char *)"6000" },
	{ (char *)"heartbeat.interval.ms", (char *)"500" },
};

static int member_start(struct member *mb, const char *name)
{
	struct kafka_callbacks cb;
	struct config cfg;
	char err[512];

	memset(mb, 0, sizeof(*mb));
	mb->name = name;
	mb->rec = calloc(MAX_RECORDS, sizeof(*mb->rec));
	if (!mb->rec)
		return -1;
	memset(&cb, 0, sizeof(cb));
	cb.on_message = m_on_message;
	cb.on_assigned = m_on_assigned;
	cb.in_flight = m_in_flight;
	cb.on_revoked = m_on_revoked;
	cb.on_closed = m_on_closed;
	cb.arg = mb;
	config_for(&cfg, topics_arr, fast_kv, sizeof(fast_kv) / sizeof(fast_kv[0]));
	mb->k = kafka_new(base, &cfg, &cb, err, sizeof(err));
	if (!mb->k) {
		fprintf(stderr, "kafka_new: %s\n", err);
		return -1;
	}
	return 0;
}

static void member_intake(struct member *mb, int on)
{
	mb->intake = on;
	kafka_set_intake(mb->k, on);
}

static int is_closed(void *arg)
{
	return ((struct member *)arg)->closed;
}

static void member_stop(struct member *mb)
{
	if (!mb->k)
		return;
	kafka_close(mb->k);
	CHECK(run_until(is_closed, mb, 30000));
	CHECK_INT(kafka_in_group(mb->k), 0);
	kafka_free(mb->k);
	mb->k = NULL;
	free(mb->rec);
	mb->rec = NULL;
}

static int is_in_group(void *arg)
{
	struct member *mb = arg;

	return kafka_in_group(mb->k) && mb->assigned_calls > 0;
}

struct count_wait {
	struct member *mb;
	size_t want;
};

static int has_records(void *arg)
{
	struct count_wait *cw = arg;

	return cw->mb->n_rec >= cw->want;
}

/* ---- producing ------------------------------------------------------- */

static int produced_ok, produced_failed;

static void on_produced(void *arg, enum kafka_produce_result result, const char *err)
{
	int *calls = arg;

	(*calls)++;
	if (result == KAFKA_PRODUCED) {
		produced_ok++;
	} else {
		produced_failed++;
		fprintf(stderr, "produce failed: %s\n", err ? err : "?");
	}
}

struct produce_wait {
	int want;
};

static int all_produced(void *arg)
{
	struct produce_wait *pw = arg;

	return produced_ok + produced_failed >= pw->want;
}

static int *produce_calls;

/* Produces n messages with keys key-<base+i>; waits for every report. */
static void produce_n(struct kafka *k, int from, int n)
{
	struct event_header h[3] = {
		{ "h1", "v1", 2 },
		{ "null", NULL, 0 },
		{ "bin", "a\0b", 3 },
	};
	struct produce_wait pw;
	char key[32], value[64], err[256];
	int i, sync_done = 0;

	produced_ok = produced_failed = 0;
	for (i = 0; i < n; i++) {
		int before = produce_calls[from + i];

		snprintf(key, sizeof(key), "key-%d", from + i);
		snprintf(value, sizeof(value), "{\"n\":%d}", from + i);
		if (kafka_produce(k, topic, key, strlen(key), value, strlen(value), h, 3,
				  on_produced, &produce_calls[from + i], err,
				  sizeof(err)) != KAFKA_PRODUCED) {
			fprintf(stderr, "kafka_produce: %s\n", err);
			CHECK(!"kafka_produce failed");
		}
		sync_done += produce_calls[from + i] != before;
	}
	CHECK_INT(sync_done, 0); /* never inside kafka_produce */
	pw.want = n;
	CHECK(run_until(all_produced, &pw, 30000));
	CHECK_INT(produced_ok, n);
	CHECK_INT(produced_failed, 0);
}

/* ---- checks ---------------------------------------------------------- */

/* Offsets of partition p seen by mb, in arrival order. */
static size_t offsets_of(const struct member *mb, int32_t p, int64_t *out, size_t cap)
{
	size_t i, n = 0;

	for (i = 0; i < mb->n_rec; i++)
		if (mb->rec[i].partition == p && n < cap)
			out[n++] = mb->rec[i].offset;
	return n;
}

/* Every partition's offsets strictly consecutive from its first. */
static void check_consecutive(const struct member *mb, size_t from_rec)
{
	int64_t last[NPART];
	size_t i;

	for (i = 0; i < NPART; i++)
		last[i] = -1;
	for (i = from_rec; i < mb->n_rec; i++) {
		const struct record *r = &mb->rec[i];

		if (last[r->partition] >= 0 && r->offset != last[r->partition] + 1) {
			fprintf(stderr, "%s: partition %d offset %" PRId64 " after %" PRId64 "\n",
				mb->name, (int)r->partition, r->offset, last[r->partition]);
			CHECK(!"offsets not consecutive");
		}
		last[r->partition] = r->offset;
	}
}

static void check_config_errors(void)
{
	struct kafka_callbacks cb;
	struct config cfg;
	struct config_kv bad[] = { { (char *)"no.such.property", (char *)"1" } };
	struct config_kv prot[] = { { (char *)"enable.auto.commit", (char *)"false" } };
	struct config_kv badval[] = { { (char *)"session.timeout.ms", (char *)"soon" } };
	struct member mb;
	char err[512];

	memset(&mb, 0, sizeof(mb));
	memset(&cb, 0, sizeof(cb));
	cb.on_message = m_on_message;
	cb.arg = &mb;

	config_for(&cfg, topics_arr, bad, 1);
	err[0] = '\0';
	CHECK(kafka_new(base, &cfg, &cb, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no.such.property") != NULL);

	config_for(&cfg, topics_arr, prot, 1);
	err[0] = '\0';
	CHECK(kafka_new(base, &cfg, &cb, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "enable.auto.commit") != NULL);

	config_for(&cfg, topics_arr, badval, 1);
	err[0] = '\0';
	CHECK(kafka_new(base, &cfg, &cb, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "session.timeout.ms") != NULL);
}

static int lag_visible(void *arg)
{
	struct member *mb = arg;
	struct buf b;
	char want[256];
	int ok;

	buf_init(&b, 0);
	kafka_metrics(mb->k, &b);
	snprintf(want, sizeof(want),
		 "promo_webhooks_kafka_consumer_lag{topic=\"%s\",partition=\"0\"} 0\n", topic);
	ok = strstr(buf_str(&b), want) != NULL;
	buf_release(&b);
	return ok;
}

struct two {
	struct member *a, *b;
};

static int both_assigned(void *arg)
{
	struct two *t = arg;

	return t->a->n_assigned > 0 && t->b->n_assigned > 0 &&
	       t->a->n_assigned + t->b->n_assigned == NPART;
}

static int revoke_started(void *arg)
{
	struct member *mb = arg;

	return mb->in_flight_asked > 0;
}

/* ---- main ------------------------------------------------------------ */

int main(void)
{
	struct member m1, m2, m3;
	int64_t off[NPART][MAX_RECORDS / 4], c[NPART] = { -1, -1, -1 };
	size_t cnt[NPART], i, before;
	struct count_wait cw;
	struct two two;
	int p, total = 0;
	int64_t cleared_at;

	bootstrap = getenv("KAFKA_BOOTSTRAP");
	if (!bootstrap || !*bootstrap) {
		fprintf(stderr, "KAFKA_BOOTSTRAP is not set: this test needs the kafka "
				"fixture (tests/scripts/kafka.sh start)\n");
		return 1;
	}
	log_setup(getenv("PW_TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
		  LOG_FORMAT_TEXT);
	produce_calls = calloc(4000, sizeof(*produce_calls));
	base = event_base_new();
	CHECK(base && produce_calls);
	if (!base || !produce_calls)
		return TEST_DONE();
	snprintf(topic, sizeof(topic), "pw-test-kafka-%d-%ld", (int)getpid(), (long)time(NULL));
	snprintf(group, sizeof(group), "pw-test-group-%d-%ld", (int)getpid(), (long)time(NULL));
	CHECK_INT(create_topic(topic, NPART), 0);

	check_config_errors();

	/* -- 0: closing before the first assignment still reports closed -- */
	CHECK_INT(member_start(&m1, "m0"), 0);
	if (!m1.k)
		return TEST_DONE();
	member_stop(&m1);
	CHECK_INT(m1.revoked_calls, 0);

	/* -- 1: produce, consume, store, close: commits what was stored -- */
	CHECK_INT(member_start(&m1, "m1"), 0);
	if (!m1.k)
		return TEST_DONE();
	CHECK_INT(kafka_in_group(m1.k), 0);
	produce_n(m1.k, 0, 300);
	CHECK(run_until(is_in_group, &m1, 30000));
	CHECK_INT(m1.n_assigned, NPART);
	run_for(200);
	CHECK_INT(m1.n_rec, 0); /* intake starts off */
	member_intake(&m1, 1);
	cw.mb = &m1;
	cw.want = 300;
	CHECK(run_until(has_records, &cw, 30000));
	run_for(300);
	CHECK_INT(m1.n_rec, 300);
	CHECK_INT(m1.header_checked, 300);
	check_consecutive(&m1, 0);
	for (p = 0; p < NPART; p++) {
		cnt[p] = offsets_of(&m1, p, off[p], MAX_RECORDS / 4);
		CHECK(cnt[p] > 10); /* keys spread over every partition */
		CHECK_INT(off[p][0], 0);
		total += (int)cnt[p];
	}
	CHECK_INT(total, 300);
	/* Completions out of order: partition 2 first, then 1 in steps,
	 * partition 0 only half done. */
	CHECK_INT(kafka_store_offset(m1.k, topic, 2, (int64_t)cnt[2]), 0);
	CHECK_INT(kafka_store_offset(m1.k, topic, 1, 5), 0);
	CHECK_INT(kafka_store_offset(m1.k, topic, 0, (int64_t)(cnt[0] / 2)), 0);
	CHECK_INT(kafka_store_offset(m1.k, topic, 1, (int64_t)cnt[1]), 0);
	CHECK_INT(kafka_store_offset(m1.k, "no-such-topic", 0, 1), -1);
	CHECK_INT(kafka_store_offset(m1.k, topic, 7, 1), -1);
	member_stop(&m1);
	CHECK_INT(m1.revoked_calls, 1);
	CHECK_INT(m1.lost_calls, 0);
	CHECK_INT(committed(c), 0);
	CHECK_INT(c[0], (int64_t)(cnt[0] / 2));
	CHECK_INT(c[1], (int64_t)cnt[1]);
	CHECK_INT(c[2], (int64_t)cnt[2]);

	/* -- 2: a restarted member resumes after the stored offsets -- */
	CHECK_INT(member_start(&m2, "m2"), 0);
	if (!m2.k)
		return TEST_DONE();
	member_intake(&m2, 1);
	cw.mb = &m2;
	cw.want = cnt[0] - cnt[0] / 2;
	CHECK(run_until(has_records, &cw, 30000));
	run_for(1000);
	CHECK_INT(m2.n_rec, cnt[0] - cnt[0] / 2);
	for (i = 0; i < m2.n_rec; i++) {
		CHECK_INT(m2.rec[i].partition, 0);
		CHECK_INT(m2.rec[i].offset, (int64_t)(cnt[0] / 2 + i));
	}
	CHECK_INT(kafka_store_offset(m2.k, topic, 0, (int64_t)cnt[0]), 0);

	/* -- 3: intake off and on, short and long (pausing) -- */
	before = m2.n_rec;
	member_intake(&m2, 0);
	produce_n(m2.k, 300, 100);
	run_for(1000);
	CHECK_INT(m2.n_rec, before);
	member_intake(&m2, 1);
	cw.want = before + 100;
	CHECK(run_until(has_records, &cw, 30000));
	run_for(300);
	CHECK_INT(m2.n_rec, before + 100);

	before = m2.n_rec;
	member_intake(&m2, 0);
	produce_n(m2.k, 400, 150);
	run_for(7000); /* past the pause threshold */
	CHECK_INT(m2.n_rec, before);
	CHECK(kafka_in_group(m2.k));
	produce_n(m2.k, 550, 50); /* produced while paused */
	member_intake(&m2, 1);
	cw.want = before + 200;
	CHECK(run_until(has_records, &cw, 30000));
	run_for(1000);
	CHECK_INT(m2.n_rec, before + 200);
	CHECK_INT(m2.on_message_while_off, 0);
	check_consecutive(&m2, 0);
	for (p = 0; p < NPART; p++) {
		int64_t last = -1;

		for (i = 0; i < m2.n_rec; i++)
			if (m2.rec[i].partition == p)
				last = m2.rec[i].offset;
		if (last >= 0)
			CHECK_INT(kafka_store_offset(m2.k, topic, p, last + 1), 0);
	}

	/* -- 4: metrics from librdkafka's statistics -- */
	CHECK(run_until(lag_visible, &m2, 15000));
	{
		struct buf b;

		buf_init(&b, 0);
		kafka_metrics(m2.k, &b);
		CHECK(strstr(buf_str(&b), "# TYPE promo_webhooks_kafka_consumer_lag gauge") != NULL);
		CHECK(strstr(buf_str(&b), "promo_webhooks_kafka_committed_offset{topic=\"") != NULL);
		if (getenv("PW_TEST_DEBUG"))
			fprintf(stderr, "%s", buf_str(&b));
		buf_release(&b);
	}

	/* -- 5: a rebalance waits for in-flight work, redelivers nothing -- */
	before = m2.n_rec;
	produce_n(m2.k, 600, 60);
	cw.want = before + 60;
	CHECK(run_until(has_records, &cw, 30000));
	m2.busy = 1; /* the new messages are "in flight" */
	CHECK_INT(member_start(&m3, "m3"), 0);
	if (!m3.k)
		return TEST_DONE();
	member_intake(&m3, 1);
	CHECK(run_until(revoke_started, &m2, 30000));
	run_for(1500);
	CHECK_INT(m2.revoked_calls, 0); /* still waiting for the work */
	/* The work finishes: store, then report nothing in flight. */
	for (p = 0; p < NPART; p++) {
		int64_t last = -1;

		for (i = 0; i < m2.n_rec; i++)
			if (m2.rec[i].partition == p)
				last = m2.rec[i].offset;
		if (last >= 0)
			CHECK_INT(kafka_store_offset(m2.k, topic, p, last + 1), 0);
	}
	cleared_at = mono_ms();
	m2.busy = 0;
	two.a = &m2;
	two.b = &m3;
	CHECK(run_until(both_assigned, &two, 30000));
	CHECK_INT(m2.revoked_calls, 1);
	CHECK_INT(m2.lost_calls, 0);
	CHECK(m2.revoked_at_ms >= cleared_at);
	run_for(1500);
	/* Nothing m2 finished reaches m3 again. */
	CHECK_INT(m3.n_rec, 0);
	/* New messages go to whichever member owns their partition. */
	before = m2.n_rec;
	produce_n(m2.k, 700, 90);
	{
		int64_t end = mono_ms() + 30000;

		while (m2.n_rec - before + m3.n_rec < 90 && mono_ms() < end)
			run_for(100);
	}
	run_for(500);
	CHECK_INT(m2.n_rec - before + m3.n_rec, 90);
	check_consecutive(&m2, 0);
	check_consecutive(&m3, 0);

	/* -- 6: closing while a revoke waits for work does not wait more -- */
	{
		struct member m4;
		int64_t t0;

		m2.busy = 1;
		m3.busy = 1;
		m2.in_flight_asked = 0;
		CHECK_INT(member_start(&m4, "m4"), 0);
		if (!m4.k)
			return TEST_DONE();
		member_intake(&m4, 1);
		CHECK(run_until(revoke_started, &m2, 30000));
		run_for(300);
		CHECK_INT(m2.revoked_calls, 1); /* only the earlier one */
		t0 = mono_ms();
		member_stop(&m2);
		CHECK(mono_ms() - t0 < 5000);
		CHECK_INT(m2.revoked_calls, 2);
		m3.busy = 0;
		two.a = &m3;
		two.b = &m4;
		CHECK(run_until(both_assigned, &two, 30000));
		member_stop(&m4);
	}
	member_stop(&m3);

	event_base_free(base);
	free(produce_calls);
	return TEST_DONE();
}
