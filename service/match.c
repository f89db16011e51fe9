/*
 * match: which webhooks an event goes to (pipeline stage 3, pure).
 *
 * An open-addressing hash table maps each (company, event type) key to its
 * run: the enabled webhooks of that key, in id order, in an array of its
 * own. A lookup is one hash of the company id and, usually, one probe: it
 * runs for every consumed event. Built from a whole snapshot, then kept
 * current one webhook at a time (the registry's change feed): adding or
 * removing a webhook costs a binary search and a move within its own run,
 * not a rebuild over every webhook.
 */
#include "promo_webhooks/match.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct match_slot {
	char *company_id;             /* owned; NULL: empty slot */
	uint64_t hash;                /* of (company_id, type) */
	enum event_type type;
	const struct webhook **hooks; /* the run, sorted by id */
	size_t count, cap;            /* a key whose run emptied keeps its
				       * slot (count 0) */
};

struct match_index {
	struct match_slot *slots;     /* nslots, a power of two */
	size_t nslots;
	size_t used;                  /* slots with a key */
};

/* FNV-1a over the company id, then the type folded in and the bits mixed
 * (splitmix64's finaliser) so that the low bits used as the slot index
 * depend on every input byte. */
static uint64_t key_hash(const char *company_id, enum event_type type)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)company_id; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	h ^= (uint64_t)type + 1;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

static int hook_cmp(const void *a, const void *b)
{
	const struct webhook *x = *(const struct webhook *const *)a;
	const struct webhook *y = *(const struct webhook *const *)b;
	int c = strcmp(x->company_id, y->company_id);

	if (c)
		return c;
	if (x->event != y->event)
		return x->event < y->event ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int same_key(const struct webhook *a, const struct webhook *b)
{
	return a->event == b->event && strcmp(a->company_id, b->company_id) == 0;
}

/* Only these can match a valid event. */
static int indexable(const struct webhook *wh)
{
	return wh && wh->enabled && wh->company_id && wh->id &&
	       (int)wh->event >= 0 && wh->event < EVENT_TYPE_COUNT;
}

static struct match_slot *slot_find(const struct match_index *mi,
				    const char *company_id, enum event_type type,
				    uint64_t h)
{
	size_t mask = mi->nslots - 1, i;

	for (i = (size_t)h & mask; mi->slots[i].company_id; i = (i + 1) & mask) {
		struct match_slot *s = &mi->slots[i];

		if (s->hash == h && s->type == type &&
		    strcmp(s->company_id, company_id) == 0)
			return s;
	}
	return NULL;
}

/* The empty slot where key hash h goes (the table has one). */
static struct match_slot *slot_free_for(struct match_slot *slots,
					size_t nslots, uint64_t h)
{
	size_t mask = nslots - 1, i = (size_t)h & mask;

	while (slots[i].company_id)
		i = (i + 1) & mask;
	return &slots[i];
}

/* Load factor at most 1/2 keeps probe sequences short; at least one slot
 * stays empty so every lookup ends. */
static int grow_for(struct match_index *mi, size_t keys)
{
	struct match_slot *slots;
	size_t nslots = mi->nslots ? mi->nslots : 2, i;

	while (nslots < keys * 2)
		nslots *= 2;
	if (nslots == mi->nslots)
		return 0;
	slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return -1;
	for (i = 0; i < mi->nslots; i++) {
		if (mi->slots[i].company_id)
			*slot_free_for(slots, nslots, mi->slots[i].hash) = mi->slots[i];
	}
	free(mi->slots);
	mi->slots = slots;
	mi->nslots = nslots;
	return 0;
}

/* A new key's slot with room for cap webhooks, or NULL. */
static struct match_slot *slot_new(struct match_index *mi, const char *company_id,
				   enum event_type type, size_t cap)
{
	uint64_t h = key_hash(company_id, type);
	struct match_slot *s;
	char *cid;
	const struct webhook **hooks;

	if (grow_for(mi, mi->used + 1) < 0)
		return NULL;
	cid = strdup(company_id);
	hooks = malloc((cap ? cap : 1) * sizeof(*hooks));
	if (!cid || !hooks) {
		free(cid);
		free(hooks);
		return NULL;
	}
	s = slot_free_for(mi->slots, mi->nslots, h);
	s->company_id = cid;
	s->hash = h;
	s->type = type;
	s->hooks = hooks;
	s->count = 0;
	s->cap = cap ? cap : 1;
	mi->used++;
	return s;
}

/* Where id is, or goes, in run s. */
static size_t run_pos(const struct match_slot *s, const char *id, int *found)
{
	size_t lo = 0, hi = s->count;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->hooks[mid]->id, id);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct match_index *match_index_build(const struct webhook *const *hooks,
				      size_t n)
{
	struct match_index *mi;
	const struct webhook **sorted = NULL;
	size_t i, m = 0, runs = 0, start;

	mi = calloc(1, sizeof(*mi));
	if (!mi)
		return NULL;
	if (n > SIZE_MAX / sizeof(*sorted) / 2)
		goto fail;
	sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (!sorted)
		goto fail;
	for (i = 0; i < n; i++) {
		/* A malformed entry could never match a valid event. */
		if (indexable(hooks[i]))
			sorted[m++] = hooks[i];
	}
	qsort(sorted, m, sizeof(*sorted), hook_cmp);
	for (i = 0; i < m; i++) {
		if (i == 0 || !same_key(sorted[i - 1], sorted[i]))
			runs++;
	}
	if (grow_for(mi, runs) < 0)
		goto fail;
	for (start = 0; start < m; start = i) {
		struct match_slot *s;

		for (i = start + 1; i < m; i++) {
			if (!same_key(sorted[start], sorted[i]))
				break;
		}
		s = slot_new(mi, sorted[start]->company_id, sorted[start]->event, i - start);
		if (!s)
			goto fail;
		memcpy(s->hooks, sorted + start, (i - start) * sizeof(*sorted));
		s->count = i - start;
	}
	free(sorted);
	return mi;
fail:
	free(sorted);
	match_index_free(mi);
	return NULL;
}

int match_index_add(struct match_index *mi, const struct webhook *wh)
{
	struct match_slot *s;
	size_t pos;
	int found;

	if (!indexable(wh))
		return 0;
	s = slot_find(mi, wh->company_id, wh->event, key_hash(wh->company_id, wh->event));
	if (!s)
		s = slot_new(mi, wh->company_id, wh->event, 1);
	if (!s)
		return -1;
	pos = run_pos(s, wh->id, &found);
	if (found) {
		s->hooks[pos] = wh;
		return 0;
	}
	if (s->count == s->cap) {
		const struct webhook **grown = realloc(s->hooks, s->cap * 2 * sizeof(*grown));

		if (!grown)
			return -1;
		s->hooks = grown;
		s->cap *= 2;
	}
	memmove(s->hooks + pos + 1, s->hooks + pos, (s->count - pos) * sizeof(*s->hooks));
	s->hooks[pos] = wh;
	s->count++;
	return 0;
}

void match_index_remove(struct match_index *mi, const struct webhook *wh)
{
	struct match_slot *s;
	size_t pos;
	int found;

	if (!mi || !wh || !wh->company_id || !wh->id)
		return;
	s = slot_find(mi, wh->company_id, wh->event, key_hash(wh->company_id, wh->event));
	if (!s)
		return;
	pos = run_pos(s, wh->id, &found);
	if (!found)
		return;
	memmove(s->hooks + pos, s->hooks + pos + 1, (s->count - pos - 1) * sizeof(*s->hooks));
	s->count--;
}

void match_index_free(struct match_index *mi)
{
	size_t i;

	if (!mi)
		return;
	for (i = 0; i < mi->nslots; i++) {
		free(mi->slots[i].company_id);
		free(mi->slots[i].hooks);
	}
	free(mi->slots);
	free(mi);
}

size_t match_find(const struct match_index *mi, const char *company_id,
		  enum event_type type, const struct webhook *const **out)
{
	const struct match_slot *s;

	*out = NULL;
	if (!mi || !company_id || !mi->nslots)
		return 0;
	s = slot_find(mi, company_id, type, key_hash(company_id, type));
	if (!s || !s->count)
		return 0;
	*out = s->hooks;
	return s->count;
}
