/*
 * tlimit: the adaptive in-flight limit of one delivery target (see
 * include/promo_webhooks/tlimit.h for the rules and why).
 */
#include "promo_webhooks/tlimit.h"

static void round_begin(struct tlimit *l, int64_t now_us)
{
	l->round_start_us = now_us;
	l->round_n = 0;
	l->round_sum_us = 0;
	l->round_full = 0;
	l->round_timeout = 0;
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
	round_begin(l, now_us);
}

/* The rules at the end of a round with mean answer time `mean`. */
static void round_end(struct tlimit *l, int64_t mean, int64_t now_us)
{
	if (l->probe_return) {
		/* The round at the floor: the base, as the target is now. */
		l->base_us = mean;
		l->base_at_us = now_us;
		l->limit = l->probe_return;
		l->probe_return = 0;
		return;
	}
	if (l->base_us && now_us - l->base_at_us > TLIMIT_BASE_KEEP_US && l->limit > l->min) {
		l->probe_return = l->limit;
		l->limit = l->min;
		return;
	}
	if (!l->base_us || mean < l->base_us || now_us - l->base_at_us > TLIMIT_BASE_KEEP_US) {
		l->base_us = mean;
		l->base_at_us = now_us;
	}
	if (mean > 2 * l->base_us + TLIMIT_PASS_US) {
		l->limit = l->limit / 2 > l->min ? l->limit / 2 : l->min;
	} else if (l->round_full && !l->round_timeout &&
		   mean <= l->base_us + l->base_us / 2 + TLIMIT_SLACK_US) {
		l->limit = l->limit * 2 < l->max ? l->limit * 2 : l->max;
	}
}

int tlimit_answer(struct tlimit *l, int64_t started_us, int64_t now_us, int timed_out,
		  int waiting)
{
	size_t was = l->limit;

	if (waiting)
		l->round_full = 1;
	if (started_us < l->round_start_us)
		return 0; /* started under an earlier limit */
	l->round_n++;
	l->round_sum_us += now_us - started_us;
	if (timed_out)
		l->round_timeout = 1;
	if (l->round_n < l->limit || now_us - l->round_start_us < TLIMIT_ROUND_US)
		return 0;
	round_end(l, l->round_sum_us / (int64_t)l->round_n, now_us);
	round_begin(l, now_us);
	return l->limit != was;
}
