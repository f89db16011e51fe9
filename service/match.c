/*
 * match: which webhooks an event goes to (pipeline stage 3, pure).
 *
 * Built once per registry snapshot: the enabled webhooks are sorted by
 * (company, event type, id) into one array, so each (company, type) key owns
 * a contiguous run already in id order, and an open-addressing hash table
 * maps the key to its run. A lookup is one hash of the company id and,
 * usually, one probe: it runs for every consumed event.
 */
#include "promo_webhooks/match.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct match_slot {
	const char *company_id;  /* NULL: empty slot; points into a webhook */
	uint64_t hash;           /* of (company_id, type) */
	enum event_type type;
	size_t start;            /* first webhook of the run in hooks[] */
	size_t count;            /* >= 1 for a used slot */
};

struct match_index {
	const struct webhook **hooks; /* enabled webhooks, sorted */
	struct match_slot *slots;     /* nslots, a power of two */
	size_t nslots;
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

static void slot_insert(struct match_index *mi, const char *company_id,
			enum event_type type, size_t start, size_t count)
{
	uint64_t h = key_hash(company_id, type);
	size_t mask = mi->nslots - 1, i = (size_t)h & mask;

	while (mi->slots[i].company_id)
		i = (i + 1) & mask;
	mi->slots[i].company_id = company_id;
	mi->slots[i].hash = h;
	mi->slots[i].type = type;
	mi->slots[i].start = start;
	mi->slots[i].count = count;
}

struct match_index *match_index_build(const struct webhook *const *hooks,
				      size_t n)
{
	struct match_index *mi;
	size_t i, m = 0, runs = 0, start;

	mi = calloc(1, sizeof(*mi));
	if (!mi)
		return NULL;
	if (n > SIZE_MAX / sizeof(*mi->hooks) / 2)
		goto fail;
	mi->hooks = malloc((n ? n : 1) * sizeof(*mi->hooks));
	if (!mi->hooks)
		goto fail;
	for (i = 0; i < n; i++) {
		const struct webhook *wh = hooks[i];

		/* A malformed entry could never match a valid event. */
		if (wh && wh->enabled && wh->company_id && wh->id &&
		    (int)wh->event >= 0 && wh->event < EVENT_TYPE_COUNT)
			mi->hooks[m++] = wh;
	}
	qsort(mi->hooks, m, sizeof(*mi->hooks), hook_cmp);
	for (i = 0; i < m; i++) {
		if (i == 0 || !same_key(mi->hooks[i - 1], mi->hooks[i]))
			runs++;
	}
	/* Load factor at most 1/2 keeps probe sequences short; at least one
	 * slot stays empty so every lookup ends. */
	mi->nslots = 2;
	while (mi->nslots < runs * 2)
		mi->nslots *= 2;
	mi->slots = calloc(mi->nslots, sizeof(*mi->slots));
	if (!mi->slots)
		goto fail;
	for (start = 0; start < m; start = i) {
		for (i = start + 1; i < m; i++) {
			if (!same_key(mi->hooks[start], mi->hooks[i]))
				break;
		}
		slot_insert(mi, mi->hooks[start]->company_id,
			    mi->hooks[start]->event, start, i - start);
	}
	return mi;
fail:
	match_index_free(mi);
	return NULL;
}

void match_index_free(struct match_index *mi)
{
	if (!mi)
		return;
	free(mi->hooks);
	free(mi->slots);
	free(mi);
}

size_t match_find(const struct match_index *mi, const char *company_id,
		  enum event_type type, const struct webhook *const **out)
{
	uint64_t h;
	size_t mask, i;

	*out = NULL;
	if (!mi || !company_id)
		return 0;
	h = key_hash(company_id, type);
	mask = mi->nslots - 1;
	for (i = (size_t)h & mask; mi->slots[i].company_id; i = (i + 1) & mask) {
		const struct match_slot *s = &mi->slots[i];

		if (s->hash == h && s->type == type &&
		    strcmp(s->company_id, company_id) == 0) {
			*out = mi->hooks + s->start;
			return s->count;
		}
	}
	return 0;
}
