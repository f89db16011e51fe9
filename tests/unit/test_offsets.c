/*
 * Unit tests of offsets: the storable offset is always "last contiguous done
 * + 1", whatever order the work completes in, across gaps in the offsets,
 * ring growth and revocation.
 */
#include "promo_webhooks/offsets.h"
#include "testutil.h"

/* offsets_done that also checks what it reports. */
static int done(struct offsets *o, struct offsets_ticket t, const char *topic,
		int32_t partition, int64_t *store)
{
	const char *tp = NULL;
	int32_t p = -1;
	int rc;

	*store = -1;
	rc = offsets_done(o, t, &tp, &p, store);
	if (rc == 1) {
		CHECK_STR(tp, topic);
		CHECK_INT(p, partition);
	}
	return rc;
}

static void test_in_order_and_out_of_order(void)
{
	struct offsets *o = offsets_new();
	struct offsets_ticket t[5];
	int64_t store;
	int i;

	CHECK(o != NULL);
	if (!o)
		return;
	for (i = 0; i < 5; i++)
		CHECK_INT(offsets_track(o, "ev", 0, 10 + i, 1000 + i, &t[i]), 0);
	CHECK_INT(offsets_pending(o, "ev", 0), 5);
	CHECK_INT(offsets_pending_total(o), 5);
	CHECK_INT(offsets_oldest_ms(o, "ev", 0), 1000);

	/* Done out of order: nothing storable until the head is done. */
	CHECK_INT(done(o, t[2], "ev", 0, &store), 0);
	CHECK_INT(done(o, t[1], "ev", 0, &store), 0);
	CHECK_INT(offsets_pending(o, "ev", 0), 5);
	CHECK_INT(done(o, t[0], "ev", 0, &store), 1);
	CHECK_INT(store, 13); /* 10, 11, 12 done */
	CHECK_INT(offsets_pending(o, "ev", 0), 2);
	CHECK_INT(offsets_oldest_ms(o, "ev", 0), 1003);

	/* Done twice: the second changes nothing. */
	CHECK_INT(done(o, t[0], "ev", 0, &store), 0);
	CHECK_INT(done(o, t[2], "ev", 0, &store), 0);

	CHECK_INT(done(o, t[4], "ev", 0, &store), 0);
	CHECK_INT(done(o, t[4], "ev", 0, &store), 0);
	CHECK_INT(done(o, t[3], "ev", 0, &store), 1);
	CHECK_INT(store, 15);
	CHECK_INT(offsets_pending(o, "ev", 0), 0);
	CHECK_INT(offsets_pending_total(o), 0);
	CHECK_INT(offsets_oldest_ms(o, "ev", 0), 0);

	/* Offsets only go up on a partition. */
	CHECK_INT(offsets_track(o, "ev", 0, 14, 0, &t[0]), -1);
	CHECK_INT(offsets_track(o, "ev", 0, 13, 0, &t[0]), -1);
	CHECK_INT(offsets_track(o, "ev", 1, -1, 0, &t[0]), -1);
	CHECK_INT(offsets_track(o, "ev", 0, 15, 0, &t[0]), 0);
	CHECK_INT(done(o, t[0], "ev", 0, &store), 1);
	CHECK_INT(store, 16);
	offsets_free(o);
}

/* Gaps (compaction, transaction markers): the stored offset follows the
 * last offset actually seen, never arithmetic. */
static void test_gaps(void)
{
	struct offsets *o = offsets_new();
	struct offsets_ticket a, b, c;
	int64_t store;

	CHECK_INT(offsets_track(o, "ev", 3, 100, 1, &a), 0);
	CHECK_INT(offsets_track(o, "ev", 3, 105, 2, &b), 0);
	CHECK_INT(offsets_track(o, "ev", 3, 200, 3, &c), 0);
	CHECK_INT(done(o, a, "ev", 3, &store), 1);
	CHECK_INT(store, 101);
	CHECK_INT(done(o, c, "ev", 3, &store), 0);
	CHECK_INT(done(o, b, "ev", 3, &store), 1);
	CHECK_INT(store, 201);
	offsets_free(o);
}

static void test_partitions_independent(void)
{
	struct offsets *o = offsets_new();
	struct offsets_ticket a0, a1, b0;
	int64_t store;

	CHECK_INT(offsets_track(o, "ev", 0, 5, 10, &a0), 0);
	CHECK_INT(offsets_track(o, "ev", 1, 5, 20, &a1), 0);
	CHECK_INT(offsets_track(o, "other", 0, 5, 30, &b0), 0);
	CHECK_INT(offsets_pending_total(o), 3);
	CHECK_INT(offsets_pending(o, "ev", 1), 1);
	CHECK_INT(offsets_pending(o, "nope", 0), 0);
	CHECK_INT(offsets_pending(o, "ev", 2), 0);
	CHECK_INT(offsets_oldest_ms(o, "other", 0), 30);
	CHECK_INT(offsets_oldest_ms(o, "nope", 0), 0);
	CHECK_INT(done(o, a1, "ev", 1, &store), 1);
	CHECK_INT(store, 6);
	CHECK_INT(done(o, b0, "other", 0, &store), 1);
	CHECK_INT(store, 6);
	CHECK_INT(offsets_pending(o, "ev", 0), 1);
	CHECK_INT(done(o, a0, "ev", 0, &store), 1);
	CHECK_INT(offsets_pending_total(o), 0);
	offsets_free(o);
}

/* A revoked partition's tickets no longer count, even after the partition
 * comes back and re-reads the same offsets. */
static void test_revoke(void)
{
	struct offsets *o = offsets_new();
	struct offsets_ticket old[3], t[2];
	int64_t store;
	int i;

	for (i = 0; i < 3; i++)
		CHECK_INT(offsets_track(o, "ev", 0, 50 + i, i, &old[i]), 0);
	CHECK_INT(offsets_track(o, "ev", 1, 7, 0, &t[0]), 0);
	CHECK_INT(done(o, old[1], "ev", 0, &store), 0);
	offsets_revoke(o, "ev", 0);
	CHECK_INT(offsets_pending(o, "ev", 0), 0);
	CHECK_INT(offsets_pending_total(o), 1);
	CHECK_INT(offsets_oldest_ms(o, "ev", 0), 0);
	offsets_revoke(o, "unknown", 9);
	CHECK_INT(offsets_pending_total(o), 1);

	/* Reassigned: consumption resumes from the committed offset 50. */
	CHECK_INT(offsets_track(o, "ev", 0, 50, 100, &t[0]), 0);
	CHECK_INT(offsets_track(o, "ev", 0, 51, 101, &t[1]), 0);
	CHECK_INT(done(o, old[0], "ev", 0, &store), 0);
	CHECK_INT(done(o, old[2], "ev", 0, &store), 0);
	CHECK_INT(offsets_pending(o, "ev", 0), 2);
	CHECK_INT(done(o, t[0], "ev", 0, &store), 1);
	CHECK_INT(store, 51);
	CHECK_INT(done(o, t[1], "ev", 0, &store), 1);
	CHECK_INT(store, 52);

	/* A made-up ticket is ignored. */
	{
		struct offsets_ticket bogus = { 999, 0, 0 };

		CHECK_INT(done(o, bogus, "ev", 0, &store), 0);
		bogus = t[1];
		bogus.seq += 100;
		CHECK_INT(done(o, bogus, "ev", 0, &store), 0);
	}
	offsets_free(o);
}

/* Many in flight with completion in reverse and interleaved orders: the
 * ring grows and wraps, and the result matches a reference model. */
static void test_growth_and_wrap(void)
{
	enum { N = 5000 };
	struct offsets *o = offsets_new();
	struct offsets_ticket *t = calloc(N, sizeof(*t));
	unsigned char *isdone = calloc(N, 1);
	int64_t store, expect_next = 0, last_store = -1;
	size_t i, k, head = 0, tracked = 0;
	unsigned int seed = 12345;

	CHECK(t && isdone);
	if (!t || !isdone)
		goto out;
	/* Track in bursts, complete in a pseudo-random order; the model's
	 * storable offset is 2*head (offsets are even: gaps everywhere). */
	for (k = 0; k < N; k++) {
		CHECK_INT(offsets_track(o, "ev", 7, (int64_t)(2 * k), (int64_t)k,
					&t[k]), 0);
		tracked++;
		if (k % 3 == 2) {
			for (i = 0; i < 2; i++) {
				size_t pick;

				seed = seed * 1103515245u + 12345u;
				pick = head + (seed >> 8) % (tracked - head);
				if (isdone[pick])
					continue;
				isdone[pick] = 1;
				if (done(o, t[pick], "ev", 7, &store) == 1)
					last_store = store;
				while (head < tracked && isdone[head])
					head++;
				expect_next = head ? (int64_t)(2 * (head - 1) + 1) : -1;
				if (head && last_store != expect_next) {
					CHECK_INT(last_store, expect_next);
					goto out;
				}
			}
		}
	}
	CHECK_INT(offsets_pending(o, "ev", 7), tracked - head);
	for (k = N; k-- > 0;) {
		if (!isdone[k] && done(o, t[k], "ev", 7, &store) == 1)
			last_store = store;
		isdone[k] = 1;
	}
	CHECK_INT(last_store, 2 * (N - 1) + 1);
	CHECK_INT(offsets_pending_total(o), 0);
out:
	free(t);
	free(isdone);
	offsets_free(o);
}

/* Many partitions: slots stay addressable as the table grows. */
static void test_many_partitions(void)
{
	struct offsets *o = offsets_new();
	struct offsets_ticket t[300];
	int64_t store;
	int i;

	for (i = 0; i < 300; i++)
		CHECK_INT(offsets_track(o, i % 2 ? "a" : "b", i, i, i, &t[i]), 0);
	CHECK_INT(offsets_pending_total(o), 300);
	for (i = 299; i >= 0; i--) {
		CHECK_INT(offsets_pending(o, i % 2 ? "a" : "b", i), 1);
		CHECK_INT(done(o, t[i], i % 2 ? "a" : "b", i, &store), 1);
		CHECK_INT(store, i + 1);
	}
	CHECK_INT(offsets_pending_total(o), 0);
	offsets_free(o);
	offsets_free(NULL);
}

int main(void)
{
	test_in_order_and_out_of_order();
	test_gaps();
	test_partitions_independent();
	test_revoke();
	test_growth_and_wrap();
	test_many_partitions();
	return TEST_DONE();
}
