/*
 * prom: the Prometheus text exposition format (version 0.0.4), written the
 * same way by every module that has metrics. Names are promo_webhooks_*,
 * in base units; a family's # HELP and # TYPE lines come once, before its
 * samples.
 */
#ifndef PROMO_WEBHOOKS_PROM_H
#define PROMO_WEBHOOKS_PROM_H

#include <stdint.h>

#include "promo_webhooks/buf.h"

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram).
 * help is one line of text. */
void prom_family(struct buf *out, const char *name, const char *type,
		 const char *help);
/* A family with its one unlabelled sample. */
void prom_counter(struct buf *out, const char *name, const char *help,
		  uint64_t value);
void prom_gauge(struct buf *out, const char *name, const char *help,
		int64_t value);
void prom_gauge_seconds(struct buf *out, const char *name, const char *help,
			double seconds);
/* One sample: name{labels} value; labels is the text between the braces
 * (already escaped), or NULL for none. */
void prom_sample(struct buf *out, const char *name, const char *labels,
		 uint64_t value);

#endif
