/*
 * offsets: in-flight messages per partition, for at-least-once commits
 * (pipeline stage 7, pure).
 *
 * Each partition slot keeps a FIFO (a ring buffer that doubles when full)
 * of the messages taken, in arrival order, with a done flag. Completing the
 * head pops every done entry from the front and makes "last popped offset +
 * 1" storable; completing any other entry only sets its flag. Both are O(1)
 * amortised. Slots are found by (topic, partition) through a small hash
 * table and never go away: a revoke empties the FIFO and bumps the slot's
 * generation, so tickets handed out before it no longer count.
 */
#include "promo_webhooks/offsets.h"

#include <stdlib.h>
#include <string.h>

struct offsets_entry {
	int64_t offset;
	int64_t taken_ms;
	int done;
};

struct offsets_part {
	char *topic;
	int32_t partition;
	uint32_t gen;                 /* bumped by every revoke */
	struct offsets_entry *ring;   /* cap entries, cap a power of two */
	size_t cap;
	size_t head;                  /* ring index of the oldest entry */
	size_t count;                 /* entries in the ring */
	uint64_t head_seq;            /* seq of the oldest entry */
	int64_t last_offset;          /* last tracked offset, -1 for none */
};

struct offsets {
	struct offsets_part *parts;   /* nparts slots, indexed by ticket.part */
	size_t nparts;
	size_t partscap;
	uint32_t *table;              /* hash: slot index + 1, 0 = empty */
	size_t tablecap;              /* a power of two, > 2 * nparts */
	size_t pending;               /* sum of count over all slots */
};

static uint64_t part_hash(const char *topic, int32_t partition)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)topic; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	h ^= (uint32_t)partition;
	h *= 0x100000001b3ULL;
	return h ^ (h >> 29);
}

/* The slot index of (topic, partition), or -1 when there is none. */
static long part_find(const struct offsets *o, const char *topic,
		      int32_t partition)
{
	size_t mask, i;

	if (!o->tablecap)
		return -1;
	mask = o->tablecap - 1;
	for (i = (size_t)part_hash(topic, partition) & mask; o->table[i];
	     i = (i + 1) & mask) {
		const struct offsets_part *p = &o->parts[o->table[i] - 1];

		if (p->partition == partition && strcmp(p->topic, topic) == 0)
			return (long)(o->table[i] - 1);
	}
	return -1;
}

static void table_put(uint32_t *table, size_t cap, const struct offsets_part *p,
		      uint32_t idx)
{
	size_t mask = cap - 1, i = (size_t)part_hash(p->topic, p->partition) & mask;

	while (table[i])
		i = (i + 1) & mask;
	table[i] = idx + 1;
}

/* Adds a slot for (topic, partition); returns its index or -1. */
static long part_add(struct offsets *o, const char *topic, int32_t partition)
{
	struct offsets_part *p;
	size_t len = strlen(topic);
	char *copy;

	if (o->nparts >= UINT32_MAX - 1)
		return -1;
	if ((o->nparts + 1) * 2 >= o->tablecap) {
		size_t ncap = o->tablecap ? o->tablecap * 2 : 16, i;
		uint32_t *nt = calloc(ncap, sizeof(*nt));

		if (!nt)
			return -1;
		for (i = 0; i < o->nparts; i++)
			table_put(nt, ncap, &o->parts[i], (uint32_t)i);
		free(o->table);
		o->table = nt;
		o->tablecap = ncap;
	}
	if (o->nparts == o->partscap) {
		size_t ncap = o->partscap ? o->partscap * 2 : 8;
		struct offsets_part *np = realloc(o->parts, ncap * sizeof(*np));

		if (!np)
			return -1;
		o->parts = np;
		o->partscap = ncap;
	}
	copy = malloc(len + 1);
	if (!copy)
		return -1;
	memcpy(copy, topic, len + 1);
	p = &o->parts[o->nparts];
	memset(p, 0, sizeof(*p));
	p->topic = copy;
	p->partition = partition;
	p->last_offset = -1;
	table_put(o->table, o->tablecap, p, (uint32_t)o->nparts);
	return (long)o->nparts++;
}

struct offsets *offsets_new(void)
{
	return calloc(1, sizeof(struct offsets));
}

void offsets_free(struct offsets *o)
{
	size_t i;

	if (!o)
		return;
	for (i = 0; i < o->nparts; i++) {
		free(o->parts[i].topic);
		free(o->parts[i].ring);
	}
	free(o->parts);
	free(o->table);
	free(o);
}

/* Doubles the ring, unrolling it so the oldest entry lands at index 0. */
static int ring_grow(struct offsets_part *p)
{
	size_t ncap = p->cap ? p->cap * 2 : 64, i;
	struct offsets_entry *nr;

	if (ncap > SIZE_MAX / sizeof(*nr))
		return -1;
	nr = malloc(ncap * sizeof(*nr));
	if (!nr)
		return -1;
	for (i = 0; i < p->count; i++)
		nr[i] = p->ring[(p->head + i) & (p->cap - 1)];
	free(p->ring);
	p->ring = nr;
	p->cap = ncap;
	p->head = 0;
	return 0;
}

int offsets_track(struct offsets *o, const char *topic, int32_t partition,
		  int64_t offset, int64_t now_ms, struct offsets_ticket *t)
{
	struct offsets_part *p;
	struct offsets_entry *e;
	long idx;

	idx = part_find(o, topic, partition);
	if (idx < 0)
		idx = part_add(o, topic, partition);
	if (idx < 0)
		return -1;
	p = &o->parts[idx];
	if (offset < 0 || offset <= p->last_offset)
		return -1;
	if (p->count == p->cap && ring_grow(p) < 0)
		return -1;
	e = &p->ring[(p->head + p->count) & (p->cap - 1)];
	e->offset = offset;
	e->taken_ms = now_ms;
	e->done = 0;
	t->part = (uint32_t)idx;
	t->gen = p->gen;
	t->seq = p->head_seq + p->count;
	p->count++;
	p->last_offset = offset;
	o->pending++;
	return 0;
}

int offsets_done(struct offsets *o, struct offsets_ticket t,
		 const char **topic, int32_t *partition, int64_t *store_offset)
{
	struct offsets_part *p;
	int64_t last = -1;

	if (t.part >= o->nparts)
		return 0;
	p = &o->parts[t.part];
	/* An old generation, or a ticket already popped: nothing to do. */
	if (t.gen != p->gen || t.seq < p->head_seq ||
	    t.seq - p->head_seq >= p->count)
		return 0;
	p->ring[(p->head + (size_t)(t.seq - p->head_seq)) & (p->cap - 1)].done = 1;
	if (t.seq != p->head_seq)
		return 0;
	while (p->count && p->ring[p->head].done) {
		last = p->ring[p->head].offset;
		p->head = (p->head + 1) & (p->cap - 1);
		p->head_seq++;
		p->count--;
		o->pending--;
	}
	*topic = p->topic;
	*partition = p->partition;
	*store_offset = last + 1;
	return 1;
}

void offsets_revoke(struct offsets *o, const char *topic, int32_t partition)
{
	struct offsets_part *p;
	long idx = part_find(o, topic, partition);

	if (idx < 0)
		return;
	p = &o->parts[idx];
	o->pending -= p->count;
	p->head_seq += p->count;
	p->head = 0;
	p->count = 0;
	p->gen++;
	/* A later assignment may resume below what was tracked (uncommitted
	 * messages are read again). */
	p->last_offset = -1;
}

size_t offsets_pending(const struct offsets *o, const char *topic,
		       int32_t partition)
{
	long idx = part_find(o, topic, partition);

	return idx < 0 ? 0 : o->parts[idx].count;
}

size_t offsets_pending_total(const struct offsets *o)
{
	return o->pending;
}

int64_t offsets_oldest_ms(const struct offsets *o, const char *topic,
			  int32_t partition)
{
	const struct offsets_part *p;
	long idx = part_find(o, topic, partition);

	if (idx < 0)
		return 0;
	p = &o->parts[idx];
	/* The head is never done: done entries at the front are popped. */
	return p->count ? p->ring[p->head].taken_ms : 0;
}
