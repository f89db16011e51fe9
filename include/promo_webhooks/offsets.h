/*
 * offsets: per-partition tracking of in-flight events for at-least-once
 * commits (pipeline stage 7, pure). Every message taken from Kafka is
 * tracked in arrival order; when its work is done it is marked done, and the
 * offset that may be stored is advanced over the contiguous done prefix
 * only: the stored offset is always "last contiguous done + 1", so a crash
 * re-reads everything not yet finished. Offsets may have gaps (compaction,
 * transaction markers); "next" is never computed by arithmetic except as
 * done_offset + 1 of a message actually seen.
 *
 * A partition is identified by the caller's (topic, partition). Revoking it
 * bumps its generation: tickets of the old generation are ignored when they
 * complete later.
 */
#ifndef PROMO_WEBHOOKS_OFFSETS_H
#define PROMO_WEBHOOKS_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

struct offsets;

/* Identifies one tracked message; a plain value, safe to copy. */
struct offsets_ticket {
	uint32_t part;  /* index of the partition slot */
	uint32_t gen;   /* generation of that slot when tracked */
	uint64_t seq;   /* position in the partition's arrival order */
};

struct offsets *offsets_new(void);
void offsets_free(struct offsets *o);

/* Starts tracking a message taken at now_ms. Returns 0, or -1 when out of
 * memory or offset is not above the last tracked one of that partition. */
int offsets_track(struct offsets *o, const char *topic, int32_t partition,
		  int64_t offset, int64_t now_ms, struct offsets_ticket *t);

/*
 * Marks a ticket done. Returns 1 when the partition's storable offset
 * advanced (then *topic, *partition and *store_offset say what to store:
 * the offset of the next message to consume), 0 when it did not or the
 * ticket belongs to a revoked generation.
 */
int offsets_done(struct offsets *o, struct offsets_ticket t,
		 const char **topic, int32_t *partition, int64_t *store_offset);

/* Forgets everything in flight on a partition (revoked or lost). */
void offsets_revoke(struct offsets *o, const char *topic, int32_t partition);

/* Messages tracked but not yet storable on a partition (0 if unknown). */
size_t offsets_pending(const struct offsets *o, const char *topic,
		       int32_t partition);
/* Total messages tracked and not yet storable, over all partitions. */
size_t offsets_pending_total(const struct offsets *o);
/* Time the oldest unfinished message of a partition was taken, or 0. */
int64_t offsets_oldest_ms(const struct offsets *o, const char *topic,
			  int32_t partition);

#endif
