/*
 * clock: wall and monotonic milliseconds. See include/promo_webhooks/clock.h.
 */
#include "promo_webhooks/clock.h"

#include <time.h>

static int64_t read_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_wall_ms(void)
{
	return read_ms(CLOCK_REALTIME);
}

int64_t clock_mono_ms(void)
{
	return read_ms(CLOCK_MONOTONIC);
}
