/*
 * prom: Prometheus text exposition. See include/promo_webhooks/prom.h.
 */
#include "promo_webhooks/prom.h"

#include <inttypes.h>

void prom_family(struct buf *out, const char *name, const char *type,
		 const char *help)
{
	buf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_counter(struct buf *out, const char *name, const char *help,
		  uint64_t value)
{
	prom_family(out, name, "counter", help);
	buf_addf(out, "%s %" PRIu64 "\n", name, value);
}

void prom_gauge(struct buf *out, const char *name, const char *help,
		int64_t value)
{
	prom_family(out, name, "gauge", help);
	buf_addf(out, "%s %" PRId64 "\n", name, value);
}

void prom_gauge_seconds(struct buf *out, const char *name, const char *help,
			double seconds)
{
	prom_family(out, name, "gauge", help);
	buf_addf(out, "%s %.6f\n", name, seconds);
}

void prom_sample(struct buf *out, const char *name, const char *labels,
		 uint64_t value)
{
	if (labels)
		buf_addf(out, "%s{%s} %" PRIu64 "\n", name, labels, value);
	else
		buf_addf(out, "%s %" PRIu64 "\n", name, value);
}
