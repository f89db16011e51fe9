/*
 * clock: the service's two clocks in milliseconds, in one place. Wall time
 * for what is stored or shown (attempt times, due times, event ages),
 * monotonic time for intervals and deadlines (watchdogs, backoff).
 */
#ifndef PROMO_WEBHOOKS_CLOCK_H
#define PROMO_WEBHOOKS_CLOCK_H

#include <stdint.h>

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);
/* Milliseconds since an arbitrary start, never going back (CLOCK_MONOTONIC). */
int64_t clock_mono_ms(void);

#endif
