/*
 * Unit tests of match: only enabled webhooks of the event's company and type
 * are found, sorted by id, and the index does not copy the webhooks.
 */
#include "promo_webhooks/match.h"
#include "testutil.h"

static struct webhook hook(const char *id, const char *company,
			   enum event_type ev, int enabled)
{
	struct webhook wh;

	memset(&wh, 0, sizeof(wh));
	wh.id = (char *)(uintptr_t)id;
	wh.company_id = (char *)(uintptr_t)company;
	wh.event = ev;
	wh.target = (char *)(uintptr_t)"https://example.com/hook";
	wh.enabled = enabled;
	return wh;
}

static void test_basic(void)
{
	struct webhook hs[] = {
		hook("c3", "acme", EVENT_PROMOTION_CREATED, 1),
		hook("a1", "acme", EVENT_PROMOTION_CREATED, 1),
		hook("b2", "acme", EVENT_PROMOTION_CREATED, 0),
		hook("b1", "acme", EVENT_PROMOTION_CREATED, 1),
		hook("d1", "acme", EVENT_PROMOTION_UPDATED, 1),
		hook("e1", "acme2", EVENT_PROMOTION_CREATED, 1),
		hook("f1", "acm", EVENT_PROMOTION_CREATED, 1),
		hook("g1", "beta", EVENT_PROMOTION_STARTING_IN_PERIOD, 1),
		hook("x1", "off", EVENT_PROMOTION_DELETED, 0),
	};
	const struct webhook *ptrs[sizeof(hs) / sizeof(hs[0])];
	const struct webhook *const *out;
	struct match_index *mi;
	size_t i, n;

	for (i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
		ptrs[i] = &hs[i];
	mi = match_index_build(ptrs, sizeof(hs) / sizeof(hs[0]));
	CHECK(mi != NULL);

	n = match_find(mi, "acme", EVENT_PROMOTION_CREATED, &out);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR(out[0]->id, "a1");
		CHECK_STR(out[1]->id, "b1");
		CHECK_STR(out[2]->id, "c3");
		/* Pointers to the caller's webhooks, not copies. */
		CHECK(out[0] == &hs[1]);
	}
	n = match_find(mi, "acme", EVENT_PROMOTION_UPDATED, &out);
	CHECK_INT(n, 1);
	CHECK(n == 1 && out[0] == &hs[4]);
	n = match_find(mi, "beta", EVENT_PROMOTION_STARTING_IN_PERIOD, &out);
	CHECK_INT(n, 1);
	CHECK_INT(match_find(mi, "acme2", EVENT_PROMOTION_CREATED, &out), 1);
	CHECK_INT(match_find(mi, "acm", EVENT_PROMOTION_CREATED, &out), 1);

	/* No match: count 0 and out NULL. */
	out = (const struct webhook *const *)ptrs;
	CHECK_INT(match_find(mi, "acme", EVENT_PROMOTION_DELETED, &out), 0);
	CHECK(out == NULL);
	CHECK_INT(match_find(mi, "off", EVENT_PROMOTION_DELETED, &out), 0);
	CHECK_INT(match_find(mi, "ACME", EVENT_PROMOTION_CREATED, &out), 0);
	CHECK_INT(match_find(mi, "", EVENT_PROMOTION_CREATED, &out), 0);
	CHECK_INT(match_find(mi, "beta", EVENT_PROMOTION_ENDING_IN_PERIOD, &out),
		  0);
	CHECK_INT(match_find(mi, "acme", EVENT_TYPE_COUNT, &out), 0);
	CHECK_INT(match_find(NULL, "acme", EVENT_PROMOTION_CREATED, &out), 0);
	CHECK(out == NULL);
	match_index_free(mi);
	match_index_free(NULL);
}

static void test_empty(void)
{
	const struct webhook *const *out;
	struct match_index *mi = match_index_build(NULL, 0);

	CHECK(mi != NULL);
	CHECK_INT(match_find(mi, "acme", EVENT_PROMOTION_CREATED, &out), 0);
	CHECK(out == NULL);
	match_index_free(mi);
}

/* Many companies and types: every key finds exactly its own webhooks. */
static void test_many(void)
{
	enum { COMPANIES = 500, PER = 3 };
	static char ids[COMPANIES * EVENT_TYPE_COUNT * PER][32];
	static char companies[COMPANIES][32];
	static struct webhook hs[COMPANIES * EVENT_TYPE_COUNT * PER];
	static const struct webhook *ptrs[COMPANIES * EVENT_TYPE_COUNT * PER];
	const struct webhook *const *out;
	struct match_index *mi;
	size_t c, t, k, n = 0, bad = 0;

	for (c = 0; c < COMPANIES; c++)
		snprintf(companies[c], sizeof(companies[c]), "co-%zu", c);
	/* Inserted in reverse id order to exercise the sort. */
	for (k = PER; k-- > 0;) {
		for (c = 0; c < COMPANIES; c++) {
			for (t = 0; t < EVENT_TYPE_COUNT; t++) {
				snprintf(ids[n], sizeof(ids[n]), "%zu-%zu-%zu", k,
					 c, t);
				hs[n] = hook(ids[n], companies[c],
					     (enum event_type)t, 1);
				ptrs[n] = &hs[n];
				n++;
			}
		}
	}
	mi = match_index_build(ptrs, n);
	CHECK(mi != NULL);
	for (c = 0; c < COMPANIES; c++) {
		for (t = 0; t < EVENT_TYPE_COUNT; t++) {
			size_t got = match_find(mi, companies[c],
						(enum event_type)t, &out);

			if (got != PER) {
				bad++;
				continue;
			}
			for (k = 0; k < PER; k++) {
				if (strcmp(out[k]->company_id, companies[c]) != 0 ||
				    out[k]->event != (enum event_type)t ||
				    (k > 0 && strcmp(out[k - 1]->id, out[k]->id) >= 0))
					bad++;
			}
		}
	}
	CHECK_INT(bad, 0);
	CHECK_INT(match_find(mi, "co-500", EVENT_PROMOTION_CREATED, &out), 0);
	match_index_free(mi);
}

/* Kept current one webhook at a time: adds in any order keep each run
 * sorted by id; a replace moves a webhook between keys; disabling and
 * removing take it out; a key whose run emptied finds nothing. */
static void test_changes(void)
{
	struct webhook a = hook("b", "acme", EVENT_PROMOTION_CREATED, 1);
	struct webhook b = hook("a", "acme", EVENT_PROMOTION_CREATED, 1);
	struct webhook c = hook("c", "acme", EVENT_PROMOTION_CREATED, 1);
	struct webhook b2 = hook("a", "acme", EVENT_PROMOTION_UPDATED, 1);
	struct webhook c_off = hook("c", "acme", EVENT_PROMOTION_CREATED, 0);
	const struct webhook *const *out;
	struct match_index *mi = match_index_build(NULL, 0);
	enum { MANY = 1000 };
	static char ids[MANY][16], cos[MANY][16];
	static struct webhook many[MANY];
	size_t i, bad = 0;

	CHECK(mi != NULL);
	CHECK_INT(match_index_add(mi, &a), 0);
	CHECK_INT(match_index_add(mi, &c), 0);
	CHECK_INT(match_index_add(mi, &b), 0);
	CHECK_INT(match_find(mi, "acme", EVENT_PROMOTION_CREATED, &out), 3);
	CHECK(out[0] == &b && out[1] == &a && out[2] == &c);
	/* b moves to another type: removed as it was, added as it is. */
	match_index_remove(mi, &b);
	CHECK_INT(match_index_add(mi, &b2), 0);
	CHECK_INT(match_find(mi, "acme", EVENT_PROMOTION_CREATED, &out), 2);
	CHECK(out[0] == &a && out[1] == &c);
	CHECK_INT(match_find(mi, "acme", EVENT_PROMOTION_UPDATED, &out), 1);
	CHECK(out[0] == &b2);
	/* c disabled: the old one removed, the disabled one not added. */
	match_index_remove(mi, &c);
	CHECK_INT(match_index_add(mi, &c_off), 0);
	CHECK_INT(match_find(mi, "acme", EVENT_PROMOTION_CREATED, &out), 1);
	CHECK(out[0] == &a);
	match_index_remove(mi, &a);
	match_index_remove(mi, &a); /* not there any more: nothing */
	CHECK_INT(match_find(mi, "acme", EVENT_PROMOTION_CREATED, &out), 0);
	CHECK(out == NULL);
	/* Many keys added one by one (the table grows): each finds its own. */
	for (i = 0; i < MANY; i++) {
		snprintf(ids[i], sizeof(ids[i]), "id-%zu", i);
		snprintf(cos[i], sizeof(cos[i]), "co-%zu", i / 2);
		many[i] = hook(ids[i], cos[i], EVENT_PROMOTION_DELETED, 1);
		CHECK_INT(match_index_add(mi, &many[i]), 0);
	}
	for (i = 0; i < MANY; i += 2) {
		if (match_find(mi, cos[i], EVENT_PROMOTION_DELETED, &out) != 2 ||
		    out[0] != &many[i] || out[1] != &many[i + 1])
			bad++;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(match_find(mi, "acme", EVENT_PROMOTION_UPDATED, &out), 1);
	match_index_free(mi);
}

int main(void)
{
	test_basic();
	test_empty();
	test_many();
	test_changes();
	return TEST_DONE();
}
