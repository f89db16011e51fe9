/*
 * lat_windows: the highest latency in each 100 ms window of send time, as
 * pw-bench-receiver (event to delivery) and pw-bench-produce --consume
 * (produce to consume) report it, so that run.sh can set the service's
 * worst windows beside Kafka's own in the same windows: a broker stall
 * shows in both, what the service adds to it in the difference.
 */
#ifndef PW_BENCH_LAT_WINDOWS_H
#define PW_BENCH_LAT_WINDOWS_H

#include <stdint.h>
#include <stdlib.h>

#define LAT_WINDOW_US 100000
/* More windows than this (over 2.7 hours of sends) are not reported. */
#define LAT_WINDOWS_MAX 100000

/* The windows from sent[i] / LAT_WINDOW_US (*first) on, *nw of them, each
 * the highest lat[i] sent in it (0 where nothing was): malloc'd, or NULL
 * when there is nothing to report. */
static inline uint32_t *lat_windows(const int64_t *sent, const uint32_t *lat, size_t n,
				    int64_t *first, size_t *nw)
{
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	uint32_t *w;
	size_t i;

	for (i = 0; i < n; i++) {
		int64_t k = sent[i] / LAT_WINDOW_US;

		if (k < lo)
			lo = k;
		if (k > hi)
			hi = k;
	}
	if (!n || hi - lo + 1 > LAT_WINDOWS_MAX)
		return NULL;
	w = calloc((size_t)(hi - lo + 1), sizeof(*w));
	if (!w)
		return NULL;
	for (i = 0; i < n; i++) {
		size_t k = (size_t)(sent[i] / LAT_WINDOW_US - lo);

		if (lat[i] > w[k])
			w[k] = lat[i];
	}
	*first = lo;
	*nw = (size_t)(hi - lo + 1);
	return w;
}

#endif
