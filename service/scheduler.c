/*
 * scheduler: the tick that turns promotions' dates into the derived period
 * events. See include/promo_webhooks/scheduler.h.
 *
 * Each tick hands every enabled period webhook of the registry's snapshot
 * to one store_period_scan; the store claims the due occurrences and queues
 * them as retry jobs, which the pipeline's retry path delivers. Nothing is
 * delivered from here, so a replica that dies after a claim loses nothing.
 * Scans never overlap within a replica, and across replicas a lock held
 * for three quarters of a tick lets one of them scan per tick (shorter
 * than the tick, so that another replica can take over at the next one).
 */
#include "promo_webhooks/scheduler.h"
#include "promo_webhooks/prom.h"
#include "promo_webhooks/fault.h"
#include "promo_webhooks/clock.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/webhook.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

struct scheduler {
	struct event_base *base;
	const struct config *cfg;
	struct store *store;
	struct registry *reg;
	struct event *tick_ev;           /* every cfg->scheduler_tick_ms */
	struct store_period_hook *hooks; /* this tick's hooks (pointers into
					  * the registry snapshot) */
	size_t hooks_cap;
	int scanning;                    /* a store_period_scan is in flight */
	int failing;                     /* the last scan failed (log once) */
	int64_t scan_started_ms;         /* monotonic, of the scan in flight */
	uint64_t claimed_total;          /* occurrences this replica claimed */
	uint64_t scans_total;            /* scans this replica made */
	uint64_t skipped_total;          /* ticks another replica scanned */
	uint64_t errors_total;           /* scans that failed */
	double last_scan_seconds;        /* duration of the last scan made */
	size_t last_hooks;               /* period webhooks in the last scan */
};

/* Dates and "now" are wall-clock time (clock_wall_ms), the same on every
 * replica; durations are monotonic. */

static void scan_done(void *arg, enum store_status status, size_t claimed,
		      int skipped)
{
	struct scheduler *s = arg;
	int64_t took = clock_mono_ms() - s->scan_started_ms;

	s->scanning = 0;
	if (status != STORE_OK) {
		s->errors_total++;
		if (!s->failing)
			log_warn("period scan failed", "reason=%s",
				 store_status_name(status));
		s->failing = 1;
		return;
	}
	if (s->failing)
		log_info("period scan working again", "took_ms=%" PRId64, took);
	s->failing = 0;
	if (skipped) {
		s->skipped_total++;
		return;
	}
	s->scans_total++;
	s->claimed_total += claimed;
	s->last_scan_seconds = (double)took / 1000.0;
	if (claimed == 0)
		return;
	log_info("period occurrences claimed", "count=%zu hooks=%zu took_ms=%" PRId64,
		 claimed, s->last_hooks, took);
	fault_point(s->cfg, CONFIG_FAULT_EXIT_AFTER_CLAIM,
		    "test fault: exiting right after a claim");
}

/* Collects the enabled period webhooks of the current snapshot into
 * s->hooks. Returns how many, or -1 when out of memory. */
static long collect_hooks(struct scheduler *s)
{
	const struct webhook *const *all;
	size_t n = registry_webhooks(s->reg, &all), i, k = 0;

	for (i = 0; i < n; i++) {
		const struct webhook *wh = all[i];
		struct store_period_hook *h;
		int64_t minutes = period_unit_minutes(wh->period);

		if (!wh->enabled || !event_type_is_derived(wh->event) ||
		    minutes <= 0 || wh->period_value <= 0)
			continue;
		if (k == s->hooks_cap) {
			size_t cap = s->hooks_cap ? s->hooks_cap * 2 : 64;
			struct store_period_hook *grown =
				realloc(s->hooks, cap * sizeof(*grown));

			if (!grown)
				return -1;
			s->hooks = grown;
			s->hooks_cap = cap;
		}
		h = &s->hooks[k++];
		h->webhook_id = wh->id;
		h->company_id = wh->company_id;
		h->type = wh->event;
		h->period = wh->period;
		h->period_value = wh->period_value;
		h->period_ms = wh->period_value * minutes * 60000;
	}
	return (long)k;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct scheduler *s = arg;
	int64_t now, lock_ms;
	char now_text[40];
	long n;

	if (s->scanning || !registry_is_loaded(s->reg) || !store_is_ready(s->store))
		return;
	/* A pass runs with no hooks too: it consumes {pw}:promo-fresh. */
	n = collect_hooks(s);
	if (n < 0) {
		log_error("period scan skipped: out of memory", "tick_ms=%ld",
			  s->cfg->scheduler_tick_ms);
		return;
	}
	now = clock_wall_ms();
	event_format_time(now, now_text, sizeof(now_text));
	lock_ms = (int64_t)s->cfg->scheduler_tick_ms * 3 / 4;
	if (lock_ms < 1)
		lock_ms = 1;
	s->scan_started_ms = clock_mono_ms();
	s->last_hooks = (size_t)n;
	if (store_period_scan(s->store, now, now_text, lock_ms, s->hooks,
			      (size_t)n, scan_done, s) < 0) {
		s->errors_total++;
		log_error("period scan not started", "hooks=%ld", n);
		return;
	}
	s->scanning = 1;
}

struct scheduler *scheduler_new(struct event_base *base,
				const struct config *cfg, struct store *store,
				struct registry *reg, char *err, size_t errlen)
{
	struct scheduler *s = calloc(1, sizeof(*s));
	struct timeval tv;
	long tick = cfg->scheduler_tick_ms > 0 ? cfg->scheduler_tick_ms : 1000;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base = base;
	s->cfg = cfg;
	s->store = store;
	s->reg = reg;
	tv.tv_sec = tick / 1000;
	tv.tv_usec = (tick % 1000) * 1000;
	s->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, s);
	if (!s->tick_ev || event_add(s->tick_ev, &tv) < 0) {
		snprintf(err, errlen, "cannot arm the scheduler tick");
		scheduler_free(s);
		return NULL;
	}
	return s;
}

void scheduler_free(struct scheduler *s)
{
	if (!s)
		return;
	if (s->scanning)
		store_cancel(s->store, s);
	if (s->tick_ev)
		event_free(s->tick_ev);
	free(s->hooks);
	free(s);
}

void scheduler_metrics(const struct scheduler *s, struct buf *out)
{
	prom_counter(out, "promo_webhooks_period_occurrences_claimed_total",
		     "Period event occurrences this replica claimed and queued for delivery.",
		     s->claimed_total);
	prom_counter(out, "promo_webhooks_scheduler_scans_total",
		     "Scheduler passes this replica made.",
		     s->scans_total);
	prom_counter(out, "promo_webhooks_scheduler_scans_skipped_total",
		     "Ticks left to another replica's pass.",
		     s->skipped_total);
	prom_counter(out, "promo_webhooks_scheduler_scan_errors_total",
		     "Scheduler passes that failed (Redis unavailable).",
		     s->errors_total);
	prom_gauge_seconds(out, "promo_webhooks_scheduler_scan_seconds",
			   "Duration of this replica's last scheduler pass.",
			   s->last_scan_seconds);
	prom_gauge(out, "promo_webhooks_scheduler_period_webhooks",
		   "Enabled period webhooks in this replica's last pass.",
		   (int64_t)s->last_hooks);
}
