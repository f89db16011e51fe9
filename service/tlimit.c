/*
 * tlimit: the adaptive in-flight limit of one delivery target (see
 * include/promo_webhooks/tlimit.h for the rules and why).
 */
#include "promo_webhooks/tlimit.h"

static void round_begin(struct tlimit *l, int64_t now_us, size_t queued)
{
	l->round_start_us = now_us;
	l->round_n = 0;
	l->round_sum_us = 0;
	l->round_full = 0;
	l->round_timeout = 0;
	l->round_queued = queued;
	l->round_all = 0;
}

void tlimit_init(struct tlimit *l, size_t max, int64_t now_us)
{
	l->max = max ? max : 1;
	l->min = TLIMIT_MIN < l->max ? TLIMIT_MIN : l->max;
	/* The first round measures the base at the floor. */
	l->limit = l->min;
	l->probe_return = TLIMIT_START < l->max ? TLIMIT_START : l->max;
	l->base_us = 0;
	l->base_at_us = now_us;
	l->grow_rate = 0;
	l->grow_block = 0;
	l->grow_block_at_us = 0;
	l->grown = 0;
	round_begin(l, now_us, 0);
}

static size_t doubled(const struct tlimit *l)
{
	return l->limit * 2 < l->max ? l->limit * 2 : l->max;
}

static size_t halved(const struct tlimit *l)
{
	return l->limit / 2 > l->min ? l->limit / 2 : l->min;
}

/* The rules at the end of a round with mean answer time `mean` (of the
 * requests started in it), `rate` answers per second (all answers in it),
 * and the target's queue now `queued`. */
static void round_end(struct tlimit *l, int64_t mean, int64_t rate, size_t queued,
		      int64_t now_us)
{
	int growing = queued > l->round_queued + l->round_all / TLIMIT_GROW_DIV;

	if (l->probe_return) {
		/* The round at the floor: the base, as the target is now. */
		l->base_us = mean;
		l->base_at_us = now_us;
		l->limit = l->probe_return;
		l->probe_return = 0;
		l->grow_block = 0;
		return;
	}
	if (l->grow_block && now_us - l->grow_block_at_us > TLIMIT_BASE_KEEP_US)
		l->grow_block = 0;
	if (l->grow_rate) {
		/* The round after a doubling for a growing queue: did it pay? */
		int paid = rate > l->grow_rate + l->grow_rate / TLIMIT_GROW_DIV;

		l->grow_rate = 0;
		if (!paid) {
			l->grow_block = l->limit;
			l->grow_block_at_us = now_us;
			l->limit = halved(l);
			return;
		}
		l->grown = 1;
	}
	if (!queued)
		l->grown = 0;
	if (growing && !l->round_timeout) {
		/* While the queue grows, answer rates decide, not answer times. */
		if (l->round_full && l->limit < l->max &&
		    (!l->grow_block || doubled(l) < l->grow_block)) {
			l->grow_rate = rate > 0 ? rate : 1;
			l->limit = doubled(l);
		}
		return;
	}
	if (l->grown && !l->round_timeout)
		return; /* the queue that grew drains at the limit that paid */
	if (l->base_us && now_us - l->base_at_us > TLIMIT_BASE_KEEP_US &&
	    l->limit > l->min) {
		l->probe_return = l->limit;
		l->limit = l->min;
		return;
	}
	if (!l->base_us || mean < l->base_us || now_us - l->base_at_us > TLIMIT_BASE_KEEP_US) {
		l->base_us = mean;
		l->base_at_us = now_us;
	}
	if (mean > 2 * l->base_us + TLIMIT_PASS_US) {
		l->limit = halved(l);
	} else if (l->round_full && !l->round_timeout &&
		   mean <= l->base_us + l->base_us / 2 + TLIMIT_SLACK_US) {
		l->limit = doubled(l);
	}
}

int tlimit_answer(struct tlimit *l, int64_t started_us, int64_t now_us, int timed_out,
		  size_t queued)
{
	size_t was = l->limit;
	int64_t span;

	if (queued)
		l->round_full = 1;
	l->round_all++;
	if (started_us < l->round_start_us)
		return 0; /* started under an earlier limit */
	l->round_n++;
	l->round_sum_us += now_us - started_us;
	if (timed_out)
		l->round_timeout = 1;
	span = now_us - l->round_start_us;
	if (l->round_n < l->limit || span < TLIMIT_ROUND_US)
		return 0;
	round_end(l, l->round_sum_us / (int64_t)l->round_n,
		  (int64_t)l->round_all * 1000000 / span, queued, now_us);
	round_begin(l, now_us, queued);
	return l->limit != was;
}
