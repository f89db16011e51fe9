/*
 * backoff: doubling retry delays. See include/promo_webhooks/backoff.h.
 */
#include "promo_webhooks/backoff.h"

int backoff_arm(struct backoff *b, struct event_base *base, int first_ms,
		int max_ms, event_callback_fn cb, void *arg)
{
	struct timeval tv;

	b->ms = b->ms ? b->ms * 2 : first_ms;
	if (b->ms > max_ms)
		b->ms = max_ms;
	if (!b->timer)
		b->timer = evtimer_new(base, cb, arg);
	tv.tv_sec = b->ms / 1000;
	tv.tv_usec = (b->ms % 1000) * 1000;
	if (!b->timer || evtimer_add(b->timer, &tv) < 0)
		return -1;
	return b->ms;
}

void backoff_release(struct backoff *b)
{
	if (b->timer)
		event_free(b->timer);
	b->timer = NULL;
}
